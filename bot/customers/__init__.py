"""Finding customers in the NetSuite mirror."""

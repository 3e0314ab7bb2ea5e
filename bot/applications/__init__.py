"""Credit applications: schemas (in and out), the state machine, and the intake service."""

"""Qt item models over the project: the catalogue table, the SID tree and small tables."""

"""AWS for the tests: moto in server mode on loopback, behind a proxy that can answer like AWS does under stress."""

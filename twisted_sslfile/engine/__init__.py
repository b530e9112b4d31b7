"""Sans-I/O TLS engine: no sockets, no reactor, no clock or randomness of its own."""

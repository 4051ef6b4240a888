"""Socket.IO: the primary real-time transport. Knows transports, not game rules."""

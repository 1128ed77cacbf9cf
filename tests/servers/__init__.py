"""Real servers on loopback for the remote-reading tests and benchmarks: nginx (https), XRootD, a faulty HTTP
server. Each starts in a temporary folder and is stopped (by its own process id) when the test session ends."""

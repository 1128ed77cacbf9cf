// The cluster's own small programs: the sandbox (pause) process of every pod and the forwarder that makes the
// API server, which listens only inside the node's network namespace, reachable on the host's loopback.
module physlite-facility/cluster

go 1.25.0

require golang.org/x/sys v0.38.0

# edgenode agent configuration — every key, set to its default.
#
# Run:  node agent -config /etc/edgenode/agent.hcl   (or -config /etc/edgenode/ for every *.hcl
# file in a directory, read in name order; later files override earlier ones key by key, and a
# list in a later file replaces the whole list).
#
# Syntax: HCL. Strings are quoted; durations are strings such as "250ms", "15s", "2m", "1h30m";
# sizes are strings such as "4096", "64KiB", "10MB". Comments start with #, // or /* ... */.
# Unknown keys, wrong types and bad values stop the agent with file:line:col and the key's path.

# The node's name in the cluster. Default: the machine's hostname.
# name = "edge-1"

# Region this server belongs to; servers of one region form one Raft cluster.
region = "global"

# Free-form datacenter name, shown in /v1/agent/self.
datacenter = "dc1"

# Where the Raft log, snapshots and state live. Required (except with -dev).
data_dir = "/var/lib/edgenode"

# Address the HTTP and RPC listeners bind.
bind_addr = "0.0.0.0"

# TRACE, DEBUG, INFO, WARN or ERROR (any case). SIGHUP reloads it.
log_level = "INFO"

# One JSON object per log line instead of text lines.
log_json = false

ports {
  http = 4646 # HTTP API
  rpc  = 4647 # server-to-server RPC (Raft, forwarding, snapshots); one port, multiplexed
}

# The addresses other servers and clients use to reach this one, "host" or "host:port" (the port
# defaults to the matching ports entry). Default: bind_addr when it names one address, otherwise
# the first private IPv4 address of this machine.
advertise {
  # http = "10.0.0.1:4646"
  # rpc  = "10.0.0.1:4647"
}

server {
  enabled = true

  # Servers to wait for before bootstrapping a new cluster: 3 for a three-server site (set it to
  # the same value on each). 1 bootstraps alone; 0 never bootstraps and only joins.
  bootstrap_expect = 1

  server_join {
    # RPC addresses of other servers, "host:port"; tried every retry_interval until one answers.
    retry_join     = []
    retry_interval = "15s"
  }

  # Scales the election and heartbeat timeouts (1..10); raise it on slow or loaded hardware.
  raft_multiplier = 1

  # Log entries between automatic Raft snapshots, and entries kept after one. The threshold is a
  # minimum: each server adds a random 0..threshold (so servers do not snapshot at the same time)
  # and waits at least 20x its last snapshot's duration (so large states snapshot ~5% of the time).
  snapshot_threshold = 8192
  trailing_logs      = 10240

  # The cluster key: every server session opens by proving it (a mutual challenge-response), and only
  # such sessions may speak raft, join or stage snapshots. Make one with `node operator keygen` and
  # put the same key on every server. To rotate without downtime, step every server (SIGHUP each
  # time) through ["OLD", "NEW"], ["NEW", "OLD"], "NEW": the first key dials, every listed key is accepted.
  # encrypt = "<output of node operator keygen>"

  # A server whose RPC address is not loopback refuses to start with neither encrypt nor tls.rpc,
  # unless this is true: then anyone who can reach the port can join and write the log (warned
  # at start and every hour).
  insecure_rpc = false

  # Autopilot (the leader): a server is healthy when heard from within last_contact_threshold and
  # at most max_trailing_logs behind; a new server votes once healthy for server_stabilization_time;
  # a failed voter is removed once a healthy replacement votes, or after
  # dead_server_last_contact_threshold — never below a quorum, never by a leader without one.
  # `node operator autopilot set-config` changes these for every server at runtime.
  autopilot {
    cleanup_dead_servers               = true
    last_contact_threshold             = "200ms"
    max_trailing_logs                  = 250
    server_stabilization_time          = "10s"
    dead_server_last_contact_threshold = "24h"
  }
}

# Other regions this server forwards ?region= requests to, one block per region.
federation {
  # region "east" {
  #   servers = ["10.1.0.1:4647", "10.1.0.2:4647"]
  # }
}

# Leader-run automatic backups: every interval, a snapshot into path; the newest retain are kept.
snapshot_schedule {
  enabled  = false
  interval = "1h"
  retain   = 24
  # path   = "/var/lib/edgenode/backups"   # default: <data_dir>/backups
}

acl {
  # When true, every request needs a token (except /v1/agent/health, /v1/status/* and
  # /v1/acl/bootstrap); run `node acl bootstrap` once to get the management token.
  enabled = false
}

tls {
  http = false # HTTPS for the API
  rpc  = false # TLS between servers (needs ca_file: servers verify each other)

  ca_file   = ""
  cert_file = "" # required when http or rpc is true
  key_file  = "" # required when http or rpc is true

  # Check that a server's certificate names the server being connected to.
  verify_server_hostname = true
}

limits {
  http_max_conns_per_client = 100     # concurrent HTTP connections per client IP
  rpc_max_conns_per_client  = 100     # concurrent RPC connections per client IP
  max_request_body          = "64KiB" # every request body except snapshot restore (413 above it)
}

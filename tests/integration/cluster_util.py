#!/usr/bin/python3
"""
Helpers for the cluster end-to-end tests (tests/integration/7N-cluster-*.py),
on top of the harness (wssd_test). The pieces live in harness/cluster.py:

  Redis(port=None)          a redis-server on a free loopback port, no
                            persistence: start(), stop(), kill(), pause(),
                            resume(), start() again on the same port; cli()
                            runs redis-cli against it, command() one command
  Cluster(n, ...)           n daemons node1..nodeN sharing a Redis and a
                            0600 secret file, each up in the cluster; node(i),
                            connect(i) (a signer on node i, announced),
                            sign(j, ...), kill(i), restart(i), log(i)
  RedisWatch(port)          every message the nodes publish on the cluster's
                            channels (tag and JSON), seen through MONITOR
  seal(key, obj)            a message tagged as a node would (c.key is the
                            cluster's key)
  ends_with(task, ...)      a sign request's error outcome, within a bound
  Balancer(ports)           a TCP balancer: new connections go to a live node
  SignerSwarm(urls, ...)    many honest signers in one child process, moving
                            to another node when theirs goes

Run this file as `cluster_util.py swarm --tag T --first N --count C --urls
U1,U2,...` to get a swarm process on its own.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.cluster import (PREFIX, TAG_BYTES, Balancer, Cluster, Redis,  # noqa: E402,F401
                             RedisError, RedisWatch, SignerSwarm, cluster_key, cluster_message,
                             ends_with, key_channel, key_hex, node_channel, redis_command,
                             resp_encode, seal, swarm_key, swarm_main, swarm_seed)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "swarm":
        try:
            asyncio.run(swarm_main(sys.argv[2:]))
        except KeyboardInterrupt:
            pass
    else:
        print("usage: cluster_util.py swarm --tag T --first N --count C --urls U1,U2,...",
              file=sys.stderr)
        sys.exit(2)

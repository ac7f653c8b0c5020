"""
The end-to-end test harness, one module a concern. Tests import it through
wssd_test (and the topic modules hostile_util, fault_util, ops_util,
wssign_util, build_util, cluster_util); each piece below exists once.

  base      paths, WSSIGND_TEST_WRAPPER / WSSIGND_TEST_TIME_SCALE and
            scaled(), checks, base64, the introduction proof, the per-test
            temporary directory and child processes, certificates
  net       free_port(), port_accepts(), listening sockets, TLS contexts and
            certificate fingerprints
  procfs    VmRSS, CPU time and open descriptors of a process
  httpc     the HTTP client: one request builder, one response parser, a
            blocking connection (RawHTTP, http()) and an asyncio one
            (AsyncHttp, ahttp())
  wsraw     the raw WebSocket client (RawWS: framing, masking, handshake,
            frames, the close handshake, the introduction) and the same
            framing for a server-side connection
  metrics   GET /metrics, parsed once (Metrics, scrape(), metric())
  daemon    the daemon process (Daemon)
  signer    the websockets-based signer (Signer, SignerProcess)
  runner    run_tests()
  cluster   a Redis server, a cluster of daemons sharing it, a watch on its
            channels, a TCP balancer and a swarm of signers (through
            cluster_util)
"""

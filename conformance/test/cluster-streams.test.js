'use strict';
// The Redis Streams adapter in a mixed cluster: the cases of the classic cluster tests
// (cluster-broadcast, cluster-requests, cluster-sse: broadcasts, rooms, binary, fetchSockets,
// socketsJoin / socketsLeave, disconnectSockets, serverCount, serverSideEmit with acks,
// broadcasts with acks), each asked from every node about sockets of every node, with the
// official clients on every node, on two Rust nodes (`conformance-server --redis-adapter
// streams`) and one Node node (socket.io 4.8 + @socket.io/redis-streams-adapter 0.3), all on one
// stream. Only allRooms is left out: the streams adapter has no such request.
//
// Each required file registers its tests and starts its own cluster (one after the other).

process.env.CLUSTER_REDIS_ADAPTER = 'streams';
require('./cluster-broadcast.test.js');
require('./cluster-requests.test.js');
require('./cluster-sse.test.js');

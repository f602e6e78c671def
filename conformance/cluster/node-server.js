'use strict';
// A Node.js cluster node: the official `socket.io` 4.8 + `@socket.io/redis-adapter` 8.3 (classic
// adapter, default key `socket.io`, default options) over node-redis v4 (`redis` 4.7, the client
// the adapter's README uses). The reference the Rust `conformance-server --redis URL` must match.
//
//   node node-server.js --port 0 --redis redis://127.0.0.1:6379
//        [--redis-adapter classic|sharded|streams]  (classic: @socket.io/redis-adapter (default);
//                                            sharded: its createShardedAdapter (Redis 7 SPUBLISH /
//                                            SSUBSCRIBE, subscriptionMode `dynamic`; `all-rooms`
//                                            then acks {error}: that adapter has no allRooms());
//                                            streams: @socket.io/redis-streams-adapter 0.3)
//        [--recovery] [--recovery-duration MS]  (connectionStateRecovery, 120 s or MS,
//                                                skipMiddlewares)
//        [--admin SERVER_ID]  (also @socket.io/admin-ui's instrument(): namespace /admin, no auth,
//                              development mode, that server id; credentialed CORS from any origin)
//
// `--redis redis+cluster://host:port,host:port` reaches a Redis Cluster (node-redis
// `createCluster`).
//
// Prints `listening on 127.0.0.1:PORT` once the HTTP server listens and the adapters of both
// namespaces are subscribed (the node's own response channel is counted by PUBSUB NUMSUB).
// CORS: any origin. Exits on SIGTERM / SIGINT.
//
// Events, identical on the namespaces `/` and `/custom` (`room`: a string, an array of strings
// (union) or null (the whole namespace); a failed operation acks `{error: "<message>"}`):
//   on connect        emits `auth` with the CONNECT auth payload (`{}` if none)
//   echo (...args)    acks the same args
//   join / leave (room)            the socket joins / leaves room(s); acks ()
//   bcast (room, payload)          nsp.to(room).emit("msg", payload), sender included; no ack
//   ping-all (n, payload)          n times nsp.emit("msg", payload); no ack
//   bcast-except (room, except, payload)  nsp.to(room).except(except).emit("msg", payload); no ack
//   fetch (room)                   acks the sorted ids of nsp.in(room).fetchSockets()
//   fetch-detail (room)            acks [{id, rooms: sorted, auth: handshake.auth}] sorted by id
//   all-rooms ()                   acks the sorted nsp.adapter.allRooms()
//   sjoin / sleave (room, target)  nsp.in(room).socketsJoin / socketsLeave(target); acks ()
//   kick (room)                    nsp.in(room).disconnectSockets(true); acks ()
//   sse (payload)                  nsp.serverSideEmit("sse", payload); acks ()
//                                  (every other node: nsp.local.emit("sse-got", payload))
//   sse-ack (payload)              nsp.serverSideEmit("sse-ack", payload, cb); acks {responses}
//                                  (every other node answers cb({port, payload}))
//   ask-all (payload, timeoutMs)   nsp.timeout(timeoutMs ?? 3000).emit("ask", payload, cb);
//                                  acks {error: message or null, responses}
//   count ()                       acks {local: io.engine.clientsCount,
//                                        cluster: (await nsp.fetchSockets()).length,
//                                        servers: await nsp.adapter.serverCount()}
//
// Shapes observed with socket.io 4.8.3 / redis-adapter 8.3.0 / redis 4.7.1 (the Rust server must
// produce the same JSON, as the client sees it):
//   sse-ack   {"responses":[{"port":41001,"payload":P},{"port":41002,"payload":P}]}
//             each element is the single VALUE a remote node passed to its callback (not an args
//             array: the adapter's callback is `(arg) => publish({type: 6, requestId, data: arg})`
//             and the requester pushes `data`), in arrival order (not sorted), one per OTHER node.
//             The request and the responses travel as JSON: a Buffer payload comes back as
//             {"type":"Buffer","data":[1,2]}.
//   ask-all   {"error":null,"responses":["a","b"]}: each element is the FIRST argument of a
//             client's ack (a value, not an args array; further ack arguments are dropped), in
//             arrival order. On timeout: {"error":"operation has timed out","responses":[...the
//             acks received so far]}.
//   fetch-detail [{"id":"SR8g..","rooms":["SR8g..","red"],"auth":{"name":"a"}}]: `rooms` of a
//             REMOTE socket are all its rooms on its own node, its own id room included, exactly
//             as for a local socket; `auth` is its handshake's auth (`{}` if it sent none).
//   count     {"local":1,"cluster":2,"servers":3}: `local` counts every Engine.IO connection of
//             this node (whatever namespaces they joined), `cluster` the sockets of this
//             namespace on every node, `servers` every node subscribed to the namespace's
//             request channel, this one included (the same on `/` and `/custom`).
//   all-rooms ["SR8g..","Y3qE..","red"]: the rooms of every node for this namespace, deduplicated
//             (a Set), INCLUDING every socket's own id room (allRooms() returns the keys of the
//             in-memory rooms map); sorted here by the handler.
//   echo      acks every argument back (emitWithAck sees the first one only).
// Binary: a Buffer inside a broadcast payload crosses the cluster as msgpack `bin` and reaches
// clients of every node as a binary attachment (a Buffer in socket.io-client on Node).

const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter, createShardedAdapter } = require('@socket.io/redis-adapter');
const { createClient, createCluster } = require('redis');

function parseArgs(argv) {
  const args = { port: 0, redis: 'redis://127.0.0.1:6379', adapter: 'classic', recovery: null };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--recovery') {
      args.recovery = args.recovery ?? 120000;
      i -= 1;
      continue;
    }
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    switch (flag) {
      case '--port': args.port = Number(value); break;
      case '--redis': args.redis = value; break;
      case '--admin': args.admin = value; break;
      case '--redis-adapter':
        if (!['classic', 'sharded', 'streams'].includes(value)) throw new Error(`unknown adapter ${value}`);
        args.adapter = value;
        break;
      case '--recovery-duration': args.recovery = Number(value); break;
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  return args;
}

/** Number of Redis clients whose last command was XREAD (stream readers). */
async function xreadClients(client) {
  const list = await client.sendCommand(['CLIENT', 'LIST']);
  return String(list).split('\n').filter((line) => / cmd=xread /.test(line)).length;
}

/** nsp.to(room), or the whole namespace when room is null/undefined. */
function target(nsp, room) {
  return room == null ? nsp : nsp.to(room);
}

/**
 * Registers `event` on `socket`: `fn(...args)` runs with the ack callback removed from the
 * arguments; its (awaited) result is acked: `undefined` acks (), anything else acks that value; a
 * thrown error acks {error: message}. `fn` may take over the ack itself by returning NO_ACK.
 */
const NO_ACK = Symbol('no ack');
function handle(socket, event, fn) {
  socket.on(event, async (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    try {
      const result = await fn(args, ack);
      if (ack && result !== NO_ACK) {
        if (result === undefined) ack();
        else ack(result);
      }
    } catch (err) {
      if (ack) ack({ error: err && err.message ? err.message : String(err) });
    }
  });
}

function setupNamespace(io, nsp, getPort) {
  // Server-side events from the other nodes.
  nsp.on('sse', (payload) => {
    nsp.local.emit('sse-got', payload);
  });
  nsp.on('sse-ack', (payload, callback) => {
    if (typeof callback === 'function') callback({ port: getPort(), payload });
  });

  nsp.on('connection', (socket) => {
    socket.emit('auth', socket.handshake.auth || {});

    handle(socket, 'echo', (args, ack) => {
      if (ack) ack(...args);
      return NO_ACK;
    });
    handle(socket, 'join', ([room]) => {
      socket.join(room);
    });
    handle(socket, 'leave', ([room]) => {
      for (const r of Array.isArray(room) ? room : [room]) socket.leave(r);
    });
    handle(socket, 'bcast', ([room, payload]) => {
      target(nsp, room).emit('msg', payload);
      return NO_ACK;
    });
    handle(socket, 'ping-all', ([n, payload]) => {
      for (let i = 0; i < n; i++) nsp.emit('msg', payload);
      return NO_ACK;
    });
    handle(socket, 'bcast-except', ([room, except, payload]) => {
      let op = target(nsp, room);
      if (except != null) op = op.except(except);
      op.emit('msg', payload);
      return NO_ACK;
    });
    handle(socket, 'fetch', async ([room]) => {
      const sockets = await target(nsp, room).fetchSockets();
      return sockets.map((s) => s.id).sort();
    });
    handle(socket, 'fetch-detail', async ([room]) => {
      const sockets = await target(nsp, room).fetchSockets();
      return sockets
        .map((s) => ({ id: s.id, rooms: [...s.rooms].sort(), auth: s.handshake.auth }))
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    });
    handle(socket, 'all-rooms', async () => [...(await nsp.adapter.allRooms())].sort());
    handle(socket, 'sjoin', ([room, rooms]) => {
      target(nsp, room).socketsJoin(rooms);
    });
    handle(socket, 'sleave', ([room, rooms]) => {
      target(nsp, room).socketsLeave(rooms);
    });
    handle(socket, 'kick', ([room]) => {
      target(nsp, room).disconnectSockets(true);
    });
    handle(socket, 'sse', ([payload]) => {
      nsp.serverSideEmit('sse', payload);
    });
    handle(socket, 'sse-ack', ([payload], ack) => {
      nsp.serverSideEmit('sse-ack', payload, (err, responses) => {
        if (!ack) return;
        if (err) ack({ error: err.message });
        else ack({ responses });
      });
      return NO_ACK;
    });
    handle(socket, 'ask-all', ([payload, timeoutMs], ack) => {
      nsp.timeout(timeoutMs ?? 3000).emit('ask', payload, (err, responses) => {
        if (ack) ack({ error: err ? err.message : null, responses });
      });
      return NO_ACK;
    });
    handle(socket, 'count', async () => ({
      local: io.engine.clientsCount,
      cluster: (await nsp.fetchSockets()).length,
      servers: await nsp.adapter.serverCount(),
    }));
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  // `redis+cluster://h1:p1,h2:p2`: a Redis Cluster (node-redis createCluster, seed nodes).
  const clusterHosts = args.redis.startsWith('redis+cluster://')
    ? args.redis.slice('redis+cluster://'.length).replace(/\/$/, '').split(',') : null;
  const pubClient = clusterHosts
    ? createCluster({ rootNodes: clusterHosts.map((h) => ({ url: `redis://${h}` })) })
    : createClient({ url: args.redis });
  const subClient = pubClient.duplicate();
  for (const [name, client] of [['pub', pubClient], ['sub', subClient]]) {
    client.on('error', (err) => process.stderr.write(`redis ${name} client error: ${err.message}\n`));
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const streams = args.adapter === 'streams';
  const readersBefore = streams ? await xreadClients(pubClient) : 0;
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    // The Admin UI's client sends credentials: the origin reflected.
    cors: args.admin ? { origin: true, credentials: true } : { origin: '*' },
    adapter: streams
      ? require('@socket.io/redis-streams-adapter').createAdapter(pubClient)
      : args.adapter === 'sharded'
        ? createShardedAdapter(pubClient, subClient)
        : createAdapter(pubClient, subClient),
    ...(args.recovery != null ? {
      connectionStateRecovery: { maxDisconnectionDuration: args.recovery, skipMiddlewares: true },
    } : {}),
  });
  let port = args.port;
  const namespaces = ['/', '/custom'].map((name) => io.of(name));
  if (args.admin) {
    // `--admin SERVER_ID`: @socket.io/admin-ui's instrument(), no auth, development mode.
    const { instrument } = require('@socket.io/admin-ui');
    instrument(io, { auth: false, mode: 'development', serverId: args.admin });
  }
  for (const nsp of namespaces) setupNamespace(io, nsp, () => port);
  // The admin namespace's adapter is waited for below too.
  if (args.admin) namespaces.push(io.of('/admin'));

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(args.port, '127.0.0.1', resolve);
  });
  port = httpServer.address().port;

  // The adapters subscribe in their constructors without exposing the promise: wait until
  // Redis counts this node's own response channel of each namespace (the last channel of the
  // adapter's SUBSCRIBE, sent after its PSUBSCRIBE on the same connection), then check that
  // serverCount() answers.
  const deadline = Date.now() + 15000;
  const subscribers = async (channel) => {
    if (args.adapter === 'sharded') {
      const cmd = ['PUBSUB', 'SHARDNUMSUB', channel];
      // On a cluster, asked of the shard that owns the channel's slot.
      const reply = clusterHosts
        ? await pubClient.sendCommand(channel, true, cmd)
        : await pubClient.sendCommand(cmd);
      return Number(reply[1]);
    }
    if (clusterHosts) {
      // Classic subscriptions may sit on any node of a cluster: summed over the primaries.
      let sum = 0;
      for (const master of pubClient.masters) {
        const client = await pubClient.nodeClient(master);
        const reply = await client.sendCommand(['PUBSUB', 'NUMSUB', channel]);
        sum += Number(reply[1]);
      }
      return sum;
    }
    const counts = await pubClient.pubSubNumSub(channel);
    return Number(counts[channel]);
  };
  for (const nsp of namespaces) {
    // Streams: the node's private channel `socket.io#<nsp>#<uid>#`.
    // The sharded adapter subscribes its own response channel (`responseChannel`) last.
    const channel = streams
      ? `socket.io#${nsp.name}#${nsp.adapter.uid}#`
      : args.adapter === 'sharded'
        ? nsp.adapter.responseChannel
        : nsp.adapter.specificResponseChannel;
    for (;;) {
      if ((await subscribers(channel)) >= 1) break;
      if (Date.now() > deadline) throw new Error(`not subscribed to ${channel} after 15 s`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await nsp.adapter.serverCount();
  }
  // Streams: the reader reads from `$`, so the node is ready once its XREAD blocks.
  while (streams && (await xreadClients(pubClient)) <= readersBefore) {
    if (Date.now() > deadline) throw new Error('stream reader not blocked in XREAD after 15 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }

  const stop = () => {
    io.close();
    Promise.allSettled([pubClient.disconnect(), subClient.disconnect()])
      .finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  process.stdout.write(`listening on 127.0.0.1:${port}\n`);
}

main().catch((err) => {
  process.stderr.write(`node-server: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});

/**
 * The fault scoreboard (`pnpm faults`): the same faults against StreamEmit and the WebSocket, SSE, Postgres and
 * Redis clients users pick instead, each through a small adapter (connect, collect messages, observe whatever the
 * client offers as "disconnected", "reconnected" and "lost"). A loopback server (WebSocket, or SSE: `id` and `data`
 * the number; it replays after `Last-Event-ID` only in the scenario that says so) numbers its messages (one every
 * 10 ms, one counter for every connection); for Postgres and Redis the local server is the server and a producer of
 * our own NOTIFYs / PUBLISHes every 10 ms. Every client connects through the testkit's fault proxy:
 *
 * - server kill: the proxy resets both sides of the connection;
 * - server-side kill (Postgres and Redis): `pg_terminate_backend` / `CLIENT KILL` of the client's connections, found
 *   by the name the client gives the server;
 * - server restart: the proxy resets the connection and refuses new ones for 1 s;
 * - black hole: the proxy stops forwarding for 3 s without closing anything (a dead NAT entry, a pulled cable), and
 *   again for SSE with a server that replays after `Last-Event-ID`;
 * - oversize message: the server sends one numbered message of 32 MiB, then goes on (not Postgres: n/a, it caps a
 *   NOTIFY payload at 8,000 bytes).
 *
 * And, without the proxy, a slow consumer: the source floods for 2 s while the client's consumer takes 1 ms per
 * message (see `runFlood`).
 *
 * File watchers (StreamEmit's, chokidar, @parcel/watcher) have no connection; their faults are the watched directory
 * removed and recreated (see `runFiles`) and a slow consumer under 20,000 new files (see `runFilesFlood`).
 *
 * For each client × fault: detected (after how long), reconnected (after how long), messages lost (numbers the server
 * sent to a connection the client had, never received; for pub/sub, numbers published after the first one the client
 * received), whether the client said so, the live heap's growth, and the handles left after its close.
 * `FAULTS_KINDS=pg,redis` runs only those clients; `FAULTS_RENDER=1` runs nothing and writes the tables again from
 * the last run's cells. Prints the table and writes bench/results/faults.json and faults.md.
 */
import { once } from "node:events"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { tmpdir } from "node:os"
import { basename, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Worker } from "node:worker_threads"
import * as NodeWS from "@effect/platform-node/NodeWS"
import { PgClient } from "@effect/sql-pg"
import { fetchEventSource } from "@microsoft/fetch-event-source"
import ParcelWatcher from "@parcel/watcher"
import type { Connector, Lifecycle } from "@streamemit/core"
import { FsWatcher } from "@streamemit/fs-watcher"
import { PgListen } from "@streamemit/pg-listen"
import { RedisPubSub } from "@streamemit/redis-pubsub"
import { Sse } from "@streamemit/sse"
import * as FaultProxy from "@streamemit/testkit/FaultProxy"
import * as WsServer from "@streamemit/testkit/WsServer"
import { WebSocket } from "@streamemit/websocket"
import { watch as chokidarWatch } from "chokidar"
import { Effect, Exit, Fiber, Redacted, Schedule, Scope, Stream } from "effect"
import * as Socket from "effect/socket/Socket"
import { EventSource } from "eventsource"
import { Redis } from "ioredis"
import LaunchDarkly from "launchdarkly-eventsource"
import PartySocket from "partysocket/ws"
import pg from "pg"
import PgListenPeer from "pg-listen"
import postgres from "postgres"
import ReconnectingWebSocketModule from "reconnecting-websocket"
import { createClient } from "redis"
import { fetch } from "undici"
import WS from "ws"

const ReconnectingWebSocket = ReconnectingWebSocketModule as unknown as new (
  url: string,
  protocols: Array<string>,
  options: Record<string, unknown>
) => Reconnecting

/** What a client lets us see. */
interface Observer {
  /** A message's text (a number, maybe padded with spaces). */
  readonly message: (text: string) => void
  readonly down: () => void
  readonly up: () => void
  readonly lossSignalled: () => void
  /** A Gap saying the source was asked to replay (SSE's `Last-Event-ID`): whether it did, only the server knows. */
  readonly resumeSignalled: () => void
}

interface Adapter {
  readonly name: string
  /** Why the client cannot tell us it lost its connection (its "detected" cell is then n/a, not "no"). */
  readonly noDownEvent?: string
  readonly kind: "ws" | "sse" | "pg" | "redis"
  /**
   * The client's messages are read as a stream, at the reader's pace (StreamEmit): the flood's slow consumer is its
   * reader. A client that calls back with every message cannot be slowed: its slow consumer is a queue of ours.
   */
  readonly pulls?: true
  readonly connect: (url: string, observe: Observer, pace?: Pace) => Promise<() => Promise<void>>
}

/** The flood's consumer: 1 ms per message while `slow`, as fast as it can after. */
interface Pace {
  slow: boolean
}

const RETRY_MS = 100
const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
/** The channel of a run (each run has its own). */
let channel = ""
/** The client's name on the server in a run (Postgres `application_name`, Redis `CLIENT SETNAME`): what a kill finds. */
let clientName = ""
// CommonJS: the default import is the function itself (its types describe the module).
const createSubscriber = PgListenPeer as unknown as typeof PgListenPeer.default

/** StreamEmit's lifecycle events as the observer's calls. */
const observeEvents = (events: Stream.Stream<Lifecycle.Event, unknown>, observe: Observer) =>
  Effect.runFork(
    events.pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          if (event._tag === "Disconnected") observe.down()
          else if (event._tag === "Connected" && event.attempt > 1) observe.up()
          else if (event._tag === "Gap" && event.delivery === "possible-loss") observe.lossSignalled()
          else if (event._tag === "Gap" && event.delivery === "resumed") observe.resumeSignalled()
          // A stream that fails for good tells its reader so: what it did not deliver is not a silent loss.
          else if (event._tag === "Closed" && event.error !== undefined) observe.lossSignalled()
        })
      )
    )
  )

/** A StreamEmit handle as an adapter: its lifecycle events are what it says, its messages the numbers. */
const streamEmit = <A>(
  name: string,
  kind: Adapter["kind"],
  make: (url: string) => Effect.Effect<Connector.Handle<unknown, A>, unknown, Scope.Scope>,
  textOf: (message: A) => string
): Adapter => ({
  name,
  kind,
  pulls: true,
  connect: async (url, observe, pace) => {
    const scope = Effect.runSync(Scope.make())
    const handle = await Effect.runPromise(Scope.provide(make(url), scope))
    observeEvents(handle.events, observe)
    Effect.runFork(
      handle.messages.pipe(
        Stream.runForEach((message) => {
          const deliver = Effect.sync(() => observe.message(textOf(message)))
          return pace?.slow === true ? Effect.andThen(Effect.sleep("1 millis"), deliver) : deliver
        })
      )
    )
    await Effect.runPromise(Effect.ignore(handle.awaitConnection))
    return async () => {
      // What the overflow strategy dropped is counted in the handle's stats (and `streamemit_dropped_total`).
      if ((await Effect.runPromise(handle.stats)).dropped > 0) observe.lossSignalled()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
})

/** A reconnecting wrapper with the WebSocket interface (partysocket, reconnecting-websocket), given `ws`. */
interface Reconnecting {
  addEventListener: (type: "message" | "open" | "close", listener: (event: { data?: unknown }) => void) => void
  close: () => void
}

const reconnecting = (
  name: string,
  open: (url: string, options: Record<string, unknown>) => Reconnecting
): Adapter => ({
  name,
  kind: "ws",
  connect: async (url, observe) => {
    const socket = open(url, { WebSocket: WS, minReconnectionDelay: RETRY_MS, maxReconnectionDelay: RETRY_MS })
    let opened = false
    socket.addEventListener("message", (event) => observe.message(String(event.data)))
    socket.addEventListener("close", () => observe.down())
    socket.addEventListener("open", () => {
      if (opened) observe.up()
      opened = true
    })
    return async () => socket.close()
  }
})

const adapters: ReadonlyArray<Adapter> = [
  streamEmit(
    "StreamEmit WebSocket.make",
    "ws",
    (url) =>
      WebSocket.make({
        url,
        reconnect: Schedule.spaced(`${RETRY_MS} millis`),
        heartbeat: { interval: "500 millis", timeout: "500 millis" },
        // An attempt into the black hole is given up after a second, as the heartbeat gives up a connection.
        handshakeTimeout: "1 second"
      }),
    (text) => text
  ),
  {
    name: "ws (raw: no reconnect)",
    kind: "ws",
    connect: async (url, observe) => {
      const socket = new WS(url)
      socket.on("message", (data: Buffer) => observe.message(data.toString()))
      socket.on("close", () => observe.down())
      socket.on("error", () => {})
      return async () => socket.terminate()
    }
  },
  reconnecting("partysocket", (url, options) => new PartySocket(url, [], options)),
  reconnecting("reconnecting-websocket", (url, options) => new ReconnectingWebSocket(url, [], options)),
  {
    // As its docs suggest: the reader in a scope, retried (here every 100 ms, as every client's retry).
    name: "Effect Socket (NodeWS, retried)",
    kind: "ws",
    pulls: true,
    connect: async (url, observe, pace) => {
      let connections = 0
      const fiber = Effect.runFork(
        Effect.gen(function* () {
          const socket = yield* Socket.makeWebSocket(url, { openTimeout: "1 second" })
          yield* Effect.gen(function* () {
            const reader = yield* socket.reader
            if (connections++ > 0) observe.up()
            for (;;) {
              for (const data of yield* reader.pull) {
                if (pace?.slow === true) yield* Effect.sleep("1 millis")
                observe.message(typeof data === "string" ? data : decoder.decode(data))
              }
            }
          }).pipe(
            Effect.scoped,
            Effect.tapError(() => Effect.sync(() => observe.down())),
            Effect.retry(Schedule.spaced(`${RETRY_MS} millis`))
          )
        }).pipe(Effect.provide(NodeWS.layerWebSocketConstructor))
      )
      return () => Effect.runPromise(Fiber.interrupt(fiber))
    }
  },
  streamEmit(
    "StreamEmit Sse.make",
    "sse",
    (url) =>
      Sse.make({
        url,
        reconnect: Schedule.spaced(`${RETRY_MS} millis`),
        // The server sends every 10 ms: a second of silence is a dead connection.
        idleTimeout: "1 second",
        connectTimeout: "1 second"
      }),
    (event) => event.data
  ),
  {
    name: "eventsource (raw)",
    kind: "sse",
    connect: async (url, observe) => {
      const source = new EventSource(url)
      let opened = false
      source.onmessage = (event) => observe.message(event.data)
      source.onerror = () => observe.down()
      source.onopen = () => {
        if (opened) observe.up()
        opened = true
      }
      return async () => source.close()
    }
  },
  {
    name: "fetch-event-source",
    kind: "sse",
    connect: async (url, observe) => {
      const controller = new AbortController()
      let opened = false
      void fetchEventSource(url, {
        fetch: fetch as unknown as typeof globalThis.fetch,
        openWhenHidden: true,
        signal: controller.signal,
        onopen: async () => {
          if (opened) observe.up()
          opened = true
        },
        onmessage: (event) => observe.message(event.data),
        onclose: () => {
          observe.down()
          // Thrown: retried (returning ends it for good).
          throw new Error("closed")
        },
        onerror: () => {
          observe.down()
          return RETRY_MS
        }
      }).catch(() => {})
      return async () => controller.abort()
    }
  },
  {
    name: "launchdarkly-eventsource (readTimeoutMillis 1000)",
    kind: "sse",
    connect: async (url, observe) => {
      const source = new LaunchDarkly.EventSource(url, {
        initialRetryDelayMillis: RETRY_MS,
        maxRetryDelayMillis: RETRY_MS,
        readTimeoutMillis: 1000
      })
      let opened = false
      source.addEventListener("message", (event) => observe.message(event.data ?? ""))
      source.addEventListener("error", () => observe.down())
      source.addEventListener("open", () => {
        if (opened) observe.up()
        opened = true
      })
      return async () => source.close()
    }
  }
]

const pgAdapters: ReadonlyArray<Adapter> = [
  streamEmit(
    "StreamEmit PgListen.make",
    "pg",
    (url) =>
      PgListen.make({
        connection: url,
        channels: [channel],
        reconnect: Schedule.spaced(`${RETRY_MS} millis`),
        liveness: { interval: "500 millis", timeout: "500 millis" },
        connectTimeout: "1 second"
      }),
    (notification) => notification.payload
  ),
  {
    name: "pg (raw: no reconnect)",
    kind: "pg",
    connect: async (url, observe) => {
      const client = new pg.Client({ connectionString: url })
      client.on("error", () => observe.down())
      client.on("end", () => observe.down())
      client.on("notification", (n) => observe.message(n.payload ?? ""))
      await client.connect()
      await client.query(`LISTEN "${channel}"`)
      return () => client.end().catch(() => {})
    }
  },
  {
    name: "pg-listen (paranoidChecking 500)",
    kind: "pg",
    connect: async (url, observe) => {
      const subscriber = createSubscriber(
        { connectionString: url },
        { parse: (text: string) => text, paranoidChecking: 500, retryInterval: RETRY_MS, retryTimeout: 60_000 }
      )
      subscriber.notifications.on(channel, (payload: string) => observe.message(payload))
      subscriber.events.on("error", () => observe.down())
      subscriber.events.on("reconnect", () => observe.down())
      subscriber.events.on("connected", () => observe.up())
      await subscriber.connect()
      await subscriber.listenTo(channel)
      return () => subscriber.close().catch(() => {})
    }
  },
  {
    // Its listener fails with the connection: retried, as a user would (every 100 ms, as every client's retry).
    name: "@effect/sql-pg PgClient.listen (retried)",
    kind: "pg",
    pulls: true,
    connect: async (url, observe, pace) => {
      let listens = 0
      let listened: () => void = () => {}
      const listening = new Promise<void>((resolve) => {
        listened = resolve
      })
      const fiber = Effect.runFork(
        Effect.gen(function* () {
          const client = yield* PgClient.PgClient
          yield* Effect.gen(function* () {
            const queue = yield* client.listen(channel)
            if (listens++ > 0) observe.up()
            listened()
            yield* Stream.fromQueue(queue).pipe(
              Stream.runForEach((notification) => {
                const deliver = Effect.sync(() => observe.message(notification.payload))
                return pace?.slow === true ? Effect.andThen(Effect.sleep("1 millis"), deliver) : deliver
              })
            )
          }).pipe(
            Effect.scoped,
            Effect.tapError(() => Effect.sync(() => observe.down())),
            Effect.retry(Schedule.spaced(`${RETRY_MS} millis`))
          )
        }).pipe(
          Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2, connectTimeout: "1 second" }))
        )
      )
      await listening
      return () => Effect.runPromise(Fiber.interrupt(fiber))
    }
  },
  {
    name: "postgres.js listen",
    kind: "pg",
    noDownEvent: "no event for a lost connection",
    connect: async (url, observe) => {
      const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 1 })
      await sql.listen(
        channel,
        (payload) => observe.message(payload),
        // Called on the first LISTEN and again after every reconnect.
        (() => {
          let first = true
          return () => {
            if (!first) observe.up()
            first = false
          }
        })()
      )
      return () => sql.end({ timeout: 1 }).catch(() => {})
    }
  }
]

const redisAdapters: ReadonlyArray<Adapter> = [
  streamEmit(
    "StreamEmit RedisPubSub.make",
    "redis",
    (url) =>
      RedisPubSub.make({
        connection: { host: new URL(url).hostname, port: Number(new URL(url).port), connectionName: clientName },
        channels: [channel],
        reconnect: Schedule.spaced(`${RETRY_MS} millis`),
        liveness: { interval: "500 millis", timeout: "500 millis" },
        connectTimeout: "1 second"
      }),
    (message) => message.payload
  ),
  {
    name: "ioredis (raw: resubscribes)",
    kind: "redis",
    connect: async (url, observe) => {
      const client = new Redis(url, {
        retryStrategy: () => RETRY_MS,
        maxRetriesPerRequest: null,
        connectionName: clientName
      })
      let ready = false
      client.on("error", () => {})
      client.on("close", () => observe.down())
      client.on("ready", () => {
        if (ready) observe.up()
        ready = true
      })
      client.on("message", (_channel: string, message: string) => observe.message(message))
      await client.subscribe(channel)
      return async () => client.disconnect()
    }
  },
  {
    name: "node-redis (pingInterval 500, socketTimeout 1000)",
    kind: "redis",
    connect: async (url, observe) => {
      const client = createClient({
        url,
        name: clientName,
        pingInterval: 500,
        socket: { reconnectStrategy: RETRY_MS, socketTimeout: 1000 }
      })
      let ready = false
      client.on("error", () => observe.down())
      client.on("ready", () => {
        if (ready) observe.up()
        ready = true
      })
      await client.connect()
      await client.subscribe(channel, (message) => observe.message(message))
      return async () => {
        client.destroy()
      }
    }
  }
]

// fetch-event-source is written for browsers: on Node its close needs `window` and `document` (see the sse suite).
const browser = globalThis as { window?: unknown; document?: unknown }
browser.window ??= globalThis
browser.document ??= { hidden: false, addEventListener: () => {}, removeEventListener: () => {} }

/** An SSE server that numbers events every 10 ms to each open response, one counter for all; no replay. */
const sseServer = (count: () => number, current: () => number, sentTo: Map<object, Array<number>>, replay: boolean) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<Http.Server>((resolve) => {
          const server = Http.createServer((request, response) => {
            response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
            response.flushHeaders()
            const sent: Array<number> = []
            sentTo.set(response, sent)
            // A replaying server sends again what came after the client's last event.
            const last = Number(request.headers["last-event-id"])
            if (replay && Number.isInteger(last)) {
              for (let n = last + 1; n <= current(); n++) {
                sent.push(n)
                response.write(`id: ${n}\ndata: ${n}\n\n`)
              }
            }
            const timer = setInterval(() => {
              const n = count()
              sent.push(n)
              response.write(`id: ${n}\ndata: ${n}\n\n`)
            }, 10)
            response.once("close", () => clearInterval(timer))
          })
          server.listen(0, "127.0.0.1", () => resolve(server))
        })
    ),
    (server) =>
      Effect.promise(
        () =>
          new Promise<void>((resolve) => {
            server.closeAllConnections()
            server.close(() => resolve())
          })
      )
  )

interface Fault {
  readonly name: string
  /** SSE only: the server replays after `Last-Event-ID` (as the SSE specification asks of it). */
  readonly replay?: boolean
  /** The kinds of client it applies to, and why not to the others (their cells are then n/a with the reason). */
  readonly only?: {
    readonly kinds: ReadonlyArray<Adapter["kind"]>
    readonly otherwise: string | Partial<Record<Adapter["kind"], string>>
  }
  /**
   * Applies the fault; resolves when it is over (or at once). `big` sends one numbered message of that size;
   * `killOnServer` has Postgres or Redis end the client's connections (`pg_terminate_backend`, `CLIENT KILL`).
   */
  readonly apply: (
    proxy: FaultProxy.FaultProxy,
    big: (bytes: number) => void,
    killOnServer: () => Promise<void>
  ) => Promise<void>
  readonly observeMs: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const decoder = new TextDecoder()
const OVERSIZE = 32 * 1024 * 1024
/** A numbered message padded to `bytes` (`Number` ignores the trailing spaces). */
const padded = (n: number, bytes: number) => String(n).padEnd(bytes, " ")

const faults: ReadonlyArray<Fault> = [
  { name: "server kill", apply: (proxy) => Effect.runPromise(proxy.reset), observeMs: 2000 },
  {
    // The server itself ends the connection, as an operator or a failover does: Postgres says why first.
    name: "server-side kill (pg_terminate_backend, CLIENT KILL)",
    only: {
      kinds: ["pg", "redis"],
      otherwise: "the server is the scoreboard's own: see server kill"
    },
    apply: (_proxy, _big, killOnServer) => killOnServer(),
    observeMs: 2000
  },
  {
    // Down for a second: connections reset, then every attempt refused until it is back.
    name: "server restart (1 s down)",
    apply: async (proxy) => {
      await Effect.runPromise(Effect.andThen(proxy.refuse, proxy.reset))
      await sleep(1000)
      await Effect.runPromise(proxy.restore)
    },
    observeMs: 3000
  },
  {
    name: "black hole (3 s)",
    apply: async (proxy) => {
      await Effect.runPromise(proxy.blackhole)
      await sleep(3000)
      await Effect.runPromise(proxy.restore)
    },
    observeMs: 6000
  },
  {
    // One message far over the usual limits (ours: 16 MiB for WebSocket frames, 1 MiB for SSE events), then the
    // numbered messages go on: a buggy or hostile server.
    name: "oversize message (32 MiB)",
    only: { kinds: ["ws", "sse", "redis"], otherwise: "Postgres refuses a NOTIFY payload over 8,000 bytes" },
    apply: async (_proxy, big) => big(OVERSIZE),
    observeMs: 3000
  },
  {
    name: "black hole (3 s), server replays",
    replay: true,
    only: {
      kinds: ["sse"],
      otherwise: {
        ws: "WebSocket has no standard way to resume",
        pg: "LISTEN/NOTIFY keeps nothing for a listener that is away",
        redis: "pub/sub keeps nothing for a subscriber that is away"
      }
    },
    apply: async (proxy) => {
      await Effect.runPromise(proxy.blackhole)
      await sleep(3000)
      await Effect.runPromise(proxy.restore)
    },
    observeMs: 6000
  }
]

interface Cell {
  readonly client: string
  readonly fault: string
  /** After how long the client said it lost its connection; `no drop` when a flood never cost it the connection. */
  readonly detectedMs: number | "no" | "n/a" | "no drop"
  readonly recoveredMs: number | "no"
  readonly lost: number
  readonly lossSignalled: boolean
  readonly resumeSignalled: boolean
  /**
   * The live heap (after a full collection) at the end of the fault against before the client connected: for the
   * flood, at its end, before the backlog is read.
   */
  readonly heapGrowth: number
  /** The flood only: how many messages the source sent in its 2 s. */
  readonly sent?: number
  /** Handles (sockets, timers) still open 500 ms after the client was closed that were not open before it started. */
  readonly handlesLeft: ReadonlyArray<string>
  /** Why the scenario does not apply to this client (every other field is then empty). */
  readonly notApplicable?: string
}

/** The process's active handles by type, counted. */
const activeHandles = (): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1)
  return counts
}

/** What `after` holds more of than `before`, as `type ×n`. */
const handlesAdded = (before: Map<string, number>, after: Map<string, number>): Array<string> => {
  const added: Array<string> = []
  for (const [type, count] of after) {
    const more = count - (before.get(type) ?? 0)
    if (more > 0) added.push(more === 1 ? type : `${type} ×${more}`)
  }
  return added
}

/** The live heap after a full collection (the scoreboard runs with `--expose-gc`). */
const liveHeap = (): number => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("faults: run with node --expose-gc (pnpm faults does)")
  gc()
  return process.memoryUsage().heapUsed
}

let runs = 0

const run = async (adapter: Adapter, fault: Fault): Promise<Cell> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        // Numbers every 10 ms to each open connection, one counter for all: a reconnect shows what it missed.
        let n = 0
        const sentTo = new Map<object, Array<number>>()
        let port: number
        /** Sends one numbered message of `bytes` to every open connection (or publishes it). */
        let big: (bytes: number) => void = () => {}
        let killOnServer = async () => {}
        channel = `faults_${process.pid}_${++runs}`
        clientName = `faults_client_${process.pid}_${runs}`
        if (adapter.kind === "pg" || adapter.kind === "redis") {
          // The database is the server: a producer of its own (not behind the proxy) publishes every 10 ms.
          const sent: Array<number> = []
          sentTo.set(sent, sent)
          if (adapter.kind === "pg") {
            const producer = new pg.Client({ connectionString: PG_URL })
            yield* Effect.acquireRelease(
              Effect.promise(() => producer.connect()),
              () => Effect.promise(() => producer.end().catch(() => {}))
            )
            // One query at a time (pg would queue them, and warns that it will stop): a NOTIFY takes well under 10 ms.
            let previous: Promise<unknown> = Promise.resolve()
            const timer = setInterval(() => {
              const value = ++n
              sent.push(value)
              previous = previous.then(() =>
                producer.query("SELECT pg_notify($1, $2)", [channel, String(value)]).catch(() => {})
              )
            }, 10)
            yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
            killOnServer = async () => {
              const kill = previous.then(() =>
                producer.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [
                  clientName
                ])
              )
              previous = kill.catch(() => {})
              await kill
            }
            port = 5432
          } else {
            const producer = new Redis(REDIS_URL)
            yield* Effect.addFinalizer(() => Effect.sync(() => producer.disconnect()))
            const timer = setInterval(() => {
              const value = ++n
              sent.push(value)
              producer.publish(channel, String(value)).catch(() => {})
            }, 10)
            big = (bytes) => {
              const value = ++n
              sent.push(value)
              producer.publish(channel, padded(value, bytes)).catch(() => {})
            }
            killOnServer = async () => {
              const list = (await producer.call("CLIENT", "LIST")) as string
              for (const line of list.split("\n")) {
                if (line.includes(` name=${clientName} `)) {
                  await producer.call("CLIENT", "KILL", "ID", /\bid=(\d+)/.exec(line)![1]!)
                }
              }
            }
            yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
            port = 6379
          }
        } else if (adapter.kind === "ws") {
          const server = yield* WsServer.make({
            autoPong: true,
            onConnection: (connection) => {
              const sent: Array<number> = []
              sentTo.set(connection, sent)
              const timer = setInterval(() => {
                if (connection.socket.readyState !== 1) return
                sent.push(++n)
                connection.socket.send(String(n))
              }, 10)
              connection.socket.once("close", () => clearInterval(timer))
            }
          })
          port = server.port
          big = (bytes) => {
            for (const [connection, sent] of sentTo) {
              const socket = (connection as { socket: WS }).socket
              if (socket.readyState !== 1) continue
              sent.push(++n)
              socket.send(padded(n, bytes))
            }
          }
        } else {
          const server = yield* sseServer(
            () => ++n,
            () => n,
            sentTo,
            fault.replay === true
          )
          port = (server.address() as { port: number }).port
          big = (bytes) => {
            for (const [response, sent] of sentTo) {
              const open = response as Http.ServerResponse
              if (open.writableEnded || open.destroyed) continue
              sent.push(++n)
              open.write(`id: ${n}\ndata: ${padded(n, bytes)}\n\n`)
            }
          }
        }
        const proxy = yield* FaultProxy.make({ target: { port } })
        const received = new Set<number>()
        let faultAt = 0
        // Only what the client reports while we watch: closing it at the end is ours, not a detection.
        let watching = true
        let detectedAt: number | undefined
        let recoveredAt: number | undefined
        let signalled = false
        let resumeSignalled = false
        const handlesBefore = activeHandles()
        const heapBefore = liveHeap()
        const close = yield* Effect.promise(() =>
          adapter.connect(
            adapter.kind === "ws"
              ? `ws://${proxy.host}:${proxy.port}`
              : adapter.kind === "sse"
                ? `http://${proxy.host}:${proxy.port}/events`
                : adapter.kind === "pg"
                  ? `postgres://postgres@${proxy.host}:${proxy.port}/postgres?application_name=${clientName}`
                  : `redis://${proxy.host}:${proxy.port}`,
            {
              message: (text) => {
                received.add(Number(text))
              },
              down: () => {
                if (watching && faultAt > 0 && detectedAt === undefined) detectedAt = Date.now()
              },
              up: () => {
                if (watching && faultAt > 0 && recoveredAt === undefined) recoveredAt = Date.now()
              },
              lossSignalled: () => {
                signalled = true
              },
              resumeSignalled: () => {
                resumeSignalled = true
              }
            }
          )
        )
        yield* Effect.promise(() => sleep(500))
        faultAt = Date.now()
        const applied = fault.apply(proxy, big, killOnServer)
        yield* Effect.promise(() => sleep(fault.observeMs - 500))
        // What is sent from here may still be in flight at the close: not counted as lost.
        const inFlightAfter = n
        yield* Effect.promise(() => sleep(500))
        yield* Effect.promise(() => applied)
        const heapGrowth = liveHeap() - heapBefore
        watching = false
        yield* Effect.promise(close)
        yield* Effect.promise(() => sleep(500))
        const handlesLeft = handlesAdded(handlesBefore, activeHandles())
        // Lost: what the server wrote to a connection the client had (the socket accepted it) and the client never
        // got — what was in flight when the connection died, or sent into the black hole.
        // A pub/sub source publishes before the client has subscribed: count from the first number it received.
        const from = adapter.kind === "pg" || adapter.kind === "redis" ? Math.min(...received) : 0
        let lost = 0
        for (const sent of sentTo.values()) {
          for (const value of sent) if (value >= from && value <= inFlightAfter && !received.has(value)) lost++
        }
        return {
          client: adapter.name,
          fault: fault.name,
          detectedMs:
            detectedAt !== undefined ? detectedAt - faultAt : adapter.noDownEvent !== undefined ? "n/a" : "no",
          recoveredMs: recoveredAt === undefined ? "no" : recoveredAt - faultAt,
          lost: Math.max(0, lost),
          lossSignalled: signalled,
          resumeSignalled,
          heapGrowth,
          handlesLeft
        } satisfies Cell
      })
    )
  )

const FLOOD = "slow consumer, 2 s flood"
const FLOOD_MS = 2000

/** The numbers a client received, as bits: a flood sends millions. */
class Seen {
  private bits = new Uint8Array(1 << 20)
  count = 0
  first = Number.POSITIVE_INFINITY
  add(n: number) {
    if (!Number.isInteger(n) || n < 1) return
    while (n >> 3 >= this.bits.length) {
      const grown = new Uint8Array(this.bits.length * 2)
      grown.set(this.bits)
      this.bits = grown
    }
    const mask = 1 << (n & 7)
    if ((this.bits[n >> 3]! & mask) !== 0) return
    this.bits[n >> 3]! |= mask
    this.count++
    if (n < this.first) this.first = n
  }
  has(n: number) {
    return n >> 3 < this.bits.length && (this.bits[n >> 3]! & (1 << (n & 7))) !== 0
  }
}

/**
 * A callback client's slow consumer: what it is called with waits in a queue of ours (as its users must keep it,
 * since it cannot be paused), taken one per millisecond while the pace is slow, then all at once.
 */
const pacedQueue = (deliver: (text: string) => void, pace: Pace) => {
  let queue: Array<string> = []
  let head = 0
  let running = true
  const consumer = (async () => {
    while (running) {
      if (pace.slow) {
        if (head < queue.length) deliver(queue[head++]!)
      } else {
        // In slices, so that the client's own reading goes on.
        const end = Math.min(queue.length, head + 100_000)
        while (head < end) deliver(queue[head++]!)
      }
      if (head > 65_536 && head * 2 > queue.length) {
        queue = queue.slice(head)
        head = 0
      }
      await sleep(pace.slow ? 1 : 0)
    }
  })()
  return {
    push: (text: string) => void queue.push(text),
    stop: async () => {
      running = false
      await consumer
      queue = []
    }
  }
}

/**
 * The flood is over: the consumer reads the backlog as fast as it can until nothing more arrives for a second (at
 * most a minute), then the client is closed; resolves with the handles it left 500 ms after.
 */
const drainAndClose = async (
  seen: Seen,
  pace: Pace,
  queue: { readonly stop: () => Promise<void> } | undefined,
  close: () => Promise<void>,
  handlesBefore: Map<string, number>
): Promise<Array<string>> => {
  pace.slow = false
  let last = -1
  const drainUntil = Date.now() + 60_000
  while (seen.count !== last && Date.now() < drainUntil) {
    last = seen.count
    await sleep(1000)
  }
  await close()
  await queue?.stop()
  await sleep(500)
  return handlesAdded(handlesBefore, activeHandles())
}

/** Where the flood comes from: it starts the flood and resolves with the last number sent. */
interface FloodSource {
  readonly url: string
  readonly flood: () => Promise<number>
  readonly close: () => Promise<void>
}

const floodSource = async (kind: Adapter["kind"]): Promise<FloodSource> => {
  if (kind === "ws" || kind === "sse") {
    // In a worker thread: what it holds for a client that stops reading is not in the measured heap.
    const worker = new Worker(new URL("./servers/flood-server.ts", import.meta.url))
    const [{ port }] = (await once(worker, "message")) as [{ port: number }]
    return {
      url: kind === "ws" ? `ws://127.0.0.1:${port}` : `http://127.0.0.1:${port}/events`,
      flood: async () => {
        worker.postMessage({ cmd: "flood", ms: FLOOD_MS })
        const [{ sent }] = (await once(worker, "message")) as [{ sent: number }]
        return sent
      },
      close: async () => {
        worker.postMessage({ cmd: "close" })
        await once(worker, "message")
        await worker.terminate()
      }
    }
  }
  // Postgres and Redis are the servers: a producer of ours sends numbered 100-byte payloads, 1,000 a round trip.
  const batch = 1000
  if (kind === "pg") {
    const producer = new pg.Client({ connectionString: PG_URL })
    await producer.connect()
    return {
      url: PG_URL,
      flood: async () => {
        const until = Date.now() + FLOOD_MS
        let sent = 0
        while (Date.now() < until) {
          await producer.query("SELECT pg_notify($1, rpad(i::text, 100)) FROM generate_series($2::int, $3::int) AS i", [
            channel,
            sent + 1,
            sent + batch
          ])
          sent += batch
        }
        return sent
      },
      close: () => producer.end()
    }
  }
  const producer = new Redis(REDIS_URL)
  // Connected before the client's handles are counted.
  await producer.ping()
  return {
    url: REDIS_URL,
    flood: async () => {
      const until = Date.now() + FLOOD_MS
      let sent = 0
      while (Date.now() < until) {
        const pipeline = producer.pipeline()
        for (let n = sent + 1; n <= sent + batch; n++) pipeline.publish(channel, String(n).padEnd(100))
        await pipeline.exec()
        sent += batch
      }
      return sent
    },
    close: async () => {
      producer.disconnect()
    }
  }
}

/**
 * The slow-consumer flood: the source sends as fast as the client reads for 2 s while the client's consumer takes
 * 1 ms per message; the live heap is measured at the end of the flood; then the consumer reads the backlog as fast
 * as it can, until nothing more arrives for a second. Lost: numbers sent (from the first the client received, for
 * pub/sub) that never arrived. Not through the fault proxy: no fault but the consumer's pace.
 */
const runFlood = async (adapter: Adapter): Promise<Cell> => {
  channel = `faults_${process.pid}_${++runs}`
  const source = await floodSource(adapter.kind)
  try {
    const seen = new Seen()
    const pace: Pace = { slow: true }
    let watching = true
    let faultAt = 0
    let detectedAt: number | undefined
    let recoveredAt: number | undefined
    let signalled = false
    const count = (text: string) => seen.add(Number(text))
    const queue = adapter.pulls === true ? undefined : pacedQueue(count, pace)
    const handlesBefore = activeHandles()
    const heapBefore = liveHeap()
    const close = await adapter.connect(
      source.url,
      {
        message: queue?.push ?? count,
        down: () => {
          if (watching && faultAt > 0 && detectedAt === undefined) detectedAt = Date.now()
        },
        up: () => {
          if (watching && faultAt > 0 && recoveredAt === undefined) recoveredAt = Date.now()
        },
        lossSignalled: () => {
          signalled = true
        },
        resumeSignalled: () => {}
      },
      pace
    )
    // Subscribed, connected: a pub/sub client's subscription is in place before the first PUBLISH.
    await sleep(300)
    faultAt = Date.now()
    const sent = await source.flood()
    const heapGrowth = liveHeap() - heapBefore
    const handlesLeft = await drainAndClose(
      seen,
      pace,
      queue,
      () => {
        watching = false
        return close()
      },
      handlesBefore
    )
    const from = adapter.kind === "pg" || adapter.kind === "redis" ? seen.first : 1
    let lost = 0
    for (let n = from; n <= sent; n++) if (!seen.has(n)) lost++
    return {
      client: adapter.name,
      fault: FLOOD,
      detectedMs: detectedAt !== undefined ? detectedAt - faultAt : "no drop",
      recoveredMs: recoveredAt === undefined ? "no" : recoveredAt - faultAt,
      lost,
      lossSignalled: signalled,
      resumeSignalled: false,
      heapGrowth,
      sent: sent - from + 1,
      handlesLeft
    }
  } finally {
    await source.close()
  }
}

/** A scenario the client cannot express: n/a with the reason, never a guessed cell. */
const notApplicable = (client: string, fault: string, reason: string): Cell => ({
  client,
  fault,
  detectedMs: "n/a",
  recoveredMs: "no",
  lost: 0,
  lossSignalled: false,
  resumeSignalled: false,
  heapGrowth: 0,
  handlesLeft: [],
  notApplicable: reason
})

const out = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "faults.json")
// FAULTS_RENDER=1 runs nothing: it writes the tables again from the last run's cells.
const rendering = process.env.FAULTS_RENDER !== undefined
const cells: Array<Cell> = rendering ? (JSON.parse(readFileSync(out, "utf8")) as { cells: Array<Cell> }).cells : []
// Made on first use, by the first worker thread when piped: made here, so that no client is charged with it.
void process.stdout
// FAULTS_ONLY=oversize runs only the faults whose name contains it.
for (const fault of faults.filter(
  (f) => !rendering && (process.env.FAULTS_ONLY === undefined || f.name.includes(process.env.FAULTS_ONLY))
)) {
  for (const adapter of [...adapters, ...pgAdapters, ...redisAdapters]) {
    // FAULTS_KINDS=pg,redis runs only those clients.
    if (process.env.FAULTS_KINDS !== undefined && !process.env.FAULTS_KINDS.split(",").includes(adapter.kind)) continue
    if (fault.only !== undefined && !fault.only.kinds.includes(adapter.kind)) {
      const { otherwise } = fault.only
      cells.push(
        notApplicable(adapter.name, fault.name, typeof otherwise === "string" ? otherwise : otherwise[adapter.kind]!)
      )
      continue
    }
    console.error(`faults: ${adapter.name} × ${fault.name}…`)
    cells.push(await run(adapter, fault))
  }
}

if (!rendering && (process.env.FAULTS_ONLY === undefined || FLOOD.includes(process.env.FAULTS_ONLY))) {
  for (const adapter of [...adapters, ...pgAdapters, ...redisAdapters]) {
    if (process.env.FAULTS_KINDS !== undefined && !process.env.FAULTS_KINDS.split(",").includes(adapter.kind)) continue
    console.error(`faults: ${adapter.name} × ${FLOOD}…`)
    cells.push(await runFlood(adapter))
  }
}

/**
 * File watchers have no connection: the network faults do not apply. Their fault is the watched directory removed
 * and, a second later, created again (a deploy that swaps a directory, a volume remounted): a file is written in it
 * every 10 ms throughout (the writes of the missing second fail). Lost: files written that the watcher never
 * reported; detected: the watcher said something (an error, a removal, a lifecycle event); recovered: the first
 * file written after the re-creation that it reported, from the re-creation.
 */
interface FileObserver {
  readonly added: (path: string) => void
  readonly said: (what: string) => void
  readonly lossSignalled: () => void
}

interface FileAdapter {
  readonly name: string
  /** As `Adapter.pulls`: its changes are a stream read at the reader's pace. */
  readonly pulls?: true
  readonly watch: (root: string, observe: FileObserver, pace?: Pace) => Promise<() => Promise<void>>
}

const fileAdapters: ReadonlyArray<FileAdapter> = [
  {
    name: "StreamEmit FsWatcher.make",
    pulls: true,
    watch: async (root, observe, pace) => {
      const scope = Effect.runSync(Scope.make())
      const handle = await Effect.runPromise(Scope.provide(FsWatcher.make({ paths: root, initial: false }), scope))
      Effect.runFork(
        Stream.runForEach(handle.events, (event) =>
          Effect.sync(() => {
            if (event._tag === "Disconnected" || event._tag === "Gap") observe.said(event._tag)
            if (event._tag === "Gap" && event.delivery === "possible-loss") observe.lossSignalled()
          })
        )
      )
      Effect.runFork(
        Stream.runForEach(handle.messages, (change) => {
          const deliver = Effect.sync(() => {
            if (change._tag === "Add") observe.added(change.path)
            else if (change._tag === "UnlinkDir") observe.said("UnlinkDir")
          })
          return pace?.slow === true ? Effect.andThen(Effect.sleep("1 millis"), deliver) : deliver
        })
      )
      await Effect.runPromise(handle.awaitConnection)
      return async () => {
        // Changes merged away by the `coalesce` strategy are counted in the handle's stats.
        if ((await Effect.runPromise(handle.stats)).dropped > 0) observe.lossSignalled()
        await Effect.runPromise(Scope.close(scope, Exit.void))
      }
    }
  },
  {
    name: "chokidar (raw)",
    watch: async (root, observe) => {
      const watcher = chokidarWatch(root, { ignoreInitial: true })
      watcher.on("add", observe.added)
      watcher.on("unlinkDir", () => observe.said("unlinkDir"))
      watcher.on("error", () => observe.said("error"))
      await new Promise<void>((resolve) => watcher.once("ready", () => resolve()))
      return () => watcher.close()
    }
  },
  {
    name: "@parcel/watcher",
    watch: async (root, observe) => {
      const subscription = await ParcelWatcher.subscribe(root, (error, events) => {
        if (error !== null) observe.said("error")
        for (const event of events) if (event.type === "create") observe.added(event.path)
      })
      return () => subscription.unsubscribe()
    }
  }
]

const runFiles = async (adapter: FileAdapter): Promise<Cell> => {
  const fault = "watched directory removed, recreated 1 s later"
  const parent = mkdtempSync(join(tmpdir(), "streamemit-faults-"))
  const root = join(parent, "watched")
  mkdirSync(root)
  const seen = new Set<number>()
  const writtenAt = new Map<number, number>()
  let watching = true
  let faultAt = 0
  let recreatedAt = 0
  let detectedAt: number | undefined
  let recoveredAt: number | undefined
  let signalled = false
  const handlesBefore = activeHandles()
  const heapBefore = liveHeap()
  const close = await adapter.watch(root, {
    added: (path) => {
      const n = Number(basename(path).slice(1))
      if (!Number.isInteger(n)) return
      seen.add(n)
      if (watching && recreatedAt > 0 && recoveredAt === undefined && (writtenAt.get(n) ?? 0) >= recreatedAt) {
        recoveredAt = Date.now()
      }
    },
    said: () => {
      if (watching && faultAt > 0 && detectedAt === undefined) detectedAt = Date.now()
    },
    lossSignalled: () => {
      signalled = true
    }
  })
  let n = 0
  const timer = setInterval(() => {
    try {
      writeFileSync(join(root, `f${n + 1}`), "")
      writtenAt.set(++n, Date.now())
    } catch {
      // The directory is gone: nothing written.
    }
  }, 10)
  await sleep(500)
  faultAt = Date.now()
  rmSync(root, { recursive: true, force: true })
  await sleep(1000)
  mkdirSync(root)
  recreatedAt = Date.now()
  await sleep(2500)
  clearInterval(timer)
  // What was written in the last 500 ms may not be reported yet: not counted as lost.
  const inFlightAfter = [...writtenAt].findLast(([, at]) => at <= Date.now() - 500)?.[0] ?? 0
  await sleep(500)
  const heapGrowth = liveHeap() - heapBefore
  watching = false
  await close()
  await sleep(500)
  const handlesLeft = handlesAdded(handlesBefore, activeHandles())
  rmSync(parent, { recursive: true, force: true })
  let lost = 0
  for (let i = 1; i <= inFlightAfter; i++) if (!seen.has(i)) lost++
  return {
    client: adapter.name,
    fault,
    detectedMs: detectedAt === undefined ? "no" : detectedAt - faultAt,
    recoveredMs: recoveredAt === undefined ? "no" : recoveredAt - recreatedAt,
    lost,
    lossSignalled: signalled,
    resumeSignalled: false,
    heapGrowth,
    handlesLeft
  }
}

const FILES_FLOOD = 20_000

/**
 * A watcher's slow-consumer flood: a worker thread writes 20,000 new files as fast as it can while the watcher's
 * consumer takes 1 ms per change; the live heap is measured a second after the last write; then the consumer reads
 * the backlog as fast as it can, until nothing more arrives for a second. Lost: files never reported.
 */
const runFilesFlood = async (adapter: FileAdapter): Promise<Cell> => {
  const parent = mkdtempSync(join(tmpdir(), "streamemit-faults-"))
  const root = join(parent, "watched")
  mkdirSync(root)
  const seen = new Seen()
  const pace: Pace = { slow: true }
  let signalled = false
  let detectedAt: number | undefined
  let faultAt = 0
  let watching = true
  const count = (path: string) => seen.add(Number(basename(path).slice(1)))
  const queue = adapter.pulls === true ? undefined : pacedQueue(count, pace)
  const handlesBefore = activeHandles()
  const heapBefore = liveHeap()
  const close = await adapter.watch(
    root,
    {
      added: queue?.push ?? count,
      said: () => {
        if (watching && faultAt > 0 && detectedAt === undefined) detectedAt = Date.now()
      },
      lossSignalled: () => {
        signalled = true
      }
    },
    pace
  )
  await sleep(300)
  faultAt = Date.now()
  // In a worker thread, so that the watcher's thread is free to watch.
  const writer = new Worker(
    `const { writeFileSync } = require("node:fs"); const { join } = require("node:path")
     const { root, count } = require("node:worker_threads").workerData
     for (let n = 1; n <= count; n++) writeFileSync(join(root, "f" + n), "")
     require("node:worker_threads").parentPort.postMessage("written")`,
    { eval: true, workerData: { root, count: FILES_FLOOD } }
  )
  await once(writer, "message")
  await writer.terminate()
  // The watcher reports what was written some time after (a stat per file): measured a second after the last write.
  await sleep(1000)
  const heapGrowth = liveHeap() - heapBefore
  const handlesLeft = await drainAndClose(
    seen,
    pace,
    queue,
    () => {
      watching = false
      return close()
    },
    handlesBefore
  )
  rmSync(parent, { recursive: true, force: true })
  let lost = 0
  for (let n = 1; n <= FILES_FLOOD; n++) if (!seen.has(n)) lost++
  return {
    client: adapter.name,
    fault: `slow consumer, ${FILES_FLOOD.toLocaleString("en-US")} new files`,
    detectedMs: detectedAt === undefined ? "no drop" : detectedAt - faultAt,
    recoveredMs: "no",
    lost,
    lossSignalled: signalled,
    resumeSignalled: false,
    heapGrowth,
    sent: FILES_FLOOD,
    handlesLeft
  }
}

if (!rendering && (process.env.FAULTS_KINDS === undefined || process.env.FAULTS_KINDS.split(",").includes("files"))) {
  for (const adapter of fileAdapters) {
    cells.push(notApplicable(adapter.name, "kill, restart, black hole, oversize", "a file watcher has no connection"))
    if (process.env.FAULTS_ONLY !== undefined && !"watched directory removed".includes(process.env.FAULTS_ONLY))
      continue
    console.error(`faults: ${adapter.name} × watched directory removed…`)
    cells.push(await runFiles(adapter))
  }
  if (process.env.FAULTS_ONLY === undefined || FLOOD.includes(process.env.FAULTS_ONLY)) {
    for (const adapter of fileAdapters) {
      console.error(`faults: ${adapter.name} × slow consumer, new files…`)
      cells.push(await runFilesFlood(adapter))
    }
  }
}

const header = [
  "client",
  "fault",
  "detected",
  "reconnected",
  "lost",
  "loss signalled",
  "live heap growth",
  "handles left after close"
]
const lines = cells.map((c) =>
  c.notApplicable !== undefined
    ? [c.client, c.fault, `n/a: ${c.notApplicable}`, "", "", "", "", ""]
    : [
        c.client,
        c.fault,
        typeof c.detectedMs === "string" ? c.detectedMs : `${c.detectedMs} ms`,
        c.recoveredMs !== "no" ? `${c.recoveredMs} ms` : c.detectedMs === "no drop" ? "—" : "no",
        c.lost.toLocaleString("en-US"),
        c.lost === 0
          ? "(none lost)"
          : c.lossSignalled
            ? "yes"
            : c.resumeSignalled
              ? "NO: Gap `resumed` (replay asked)"
              : "NO",
        `${(c.heapGrowth / 1e6).toFixed(1)} MB`,
        c.handlesLeft.length === 0 ? "0" : c.handlesLeft.join(", ")
      ]
)
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
const format = (row: ReadonlyArray<string>) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ")
console.log([format(header), format(widths.map((w) => "-".repeat(w))), ...lines.map(format)].join("\n"))
mkdirSync(dirname(out), { recursive: true })
if (!rendering) {
  writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cells }, null, 2)}\n`)
}
// The same table as markdown, for the README's "How StreamEmit compares".
const markdown = out.replace(/\.json$/, ".md")
const row = (cells: ReadonlyArray<string>) => `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`
writeFileSync(
  markdown,
  `${[row(header), row(header.map(() => "---")), ...lines.map((l) => row(l.map((cell) => (cell === "" ? "—" : cell))))].join("\n")}\n`
)
console.error(`wrote ${out} and ${markdown}`)
process.exit(0)

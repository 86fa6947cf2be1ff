/**
 * The fault scoreboard (`pnpm faults`): the same faults against StreamEmit and the WebSocket, SSE, Postgres and
 * Redis clients users pick instead, each through a small adapter (connect, collect messages, observe whatever the
 * client offers as "disconnected", "reconnected" and "lost"). A loopback server (WebSocket, or SSE: `id` and `data`
 * the number; it replays after `Last-Event-ID` only in the scenario that says so) numbers its messages (one every
 * 10 ms, one counter for every connection); for Postgres and Redis the local server is the server and a producer of
 * our own NOTIFYs / PUBLISHes every 10 ms. Every client connects through the testkit's fault proxy:
 *
 * - server kill: the proxy resets both sides of the connection;
 * - server restart: the proxy resets the connection and refuses new ones for 1 s;
 * - black hole: the proxy stops forwarding for 3 s without closing anything (a dead NAT entry, a pulled cable);
 * - oversize message: the server sends one numbered message of 32 MiB, then goes on (not Postgres: n/a, it caps a
 *   NOTIFY payload at 8,000 bytes).
 *
 * File watchers (StreamEmit's, chokidar, @parcel/watcher) have no connection; their fault is the watched directory
 * removed and recreated (see `runFiles`).
 *
 * For each client × fault: detected (after how long), reconnected (after how long), messages lost (numbers the server
 * sent to a connection the client had, never received; for pub/sub, numbers published after the first one the client
 * received), and whether the client said so. `FAULTS_KINDS=pg,redis` runs only those clients. Prints the table and
 * writes bench/results/faults.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { tmpdir } from "node:os"
import { basename, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
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
import { Effect, Exit, Schedule, Scope, Stream } from "effect"
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
  readonly message: (n: number) => void
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
  readonly connect: (url: string, observe: Observer) => Promise<() => Promise<void>>
}

const RETRY_MS = 100
const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
/** The channel of a run (each run has its own). */
let channel = ""
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
  numberOf: (message: A) => number
): Adapter => ({
  name,
  kind,
  connect: async (url, observe) => {
    const scope = Effect.runSync(Scope.make())
    const handle = await Effect.runPromise(Scope.provide(make(url), scope))
    observeEvents(handle.events, observe)
    Effect.runFork(
      handle.messages.pipe(Stream.runForEach((message) => Effect.sync(() => observe.message(numberOf(message)))))
    )
    await Effect.runPromise(Effect.ignore(handle.awaitConnection))
    return () => Effect.runPromise(Scope.close(scope, Exit.void))
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
    socket.addEventListener("message", (event) => observe.message(Number(event.data)))
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
    (text) => Number(text)
  ),
  {
    name: "ws (raw: no reconnect)",
    kind: "ws",
    connect: async (url, observe) => {
      const socket = new WS(url)
      socket.on("message", (data: Buffer) => observe.message(Number(data.toString())))
      socket.on("close", () => observe.down())
      socket.on("error", () => {})
      return async () => socket.terminate()
    }
  },
  reconnecting("partysocket", (url, options) => new PartySocket(url, [], options)),
  reconnecting("reconnecting-websocket", (url, options) => new ReconnectingWebSocket(url, [], options)),
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
    (event) => Number(event.data)
  ),
  {
    name: "eventsource (raw)",
    kind: "sse",
    connect: async (url, observe) => {
      const source = new EventSource(url)
      let opened = false
      source.onmessage = (event) => observe.message(Number(event.data))
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
        onmessage: (event) => observe.message(Number(event.data)),
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
      source.addEventListener("message", (event) => observe.message(Number(event.data)))
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
    (notification) => Number(notification.payload)
  ),
  {
    name: "pg (raw: no reconnect)",
    kind: "pg",
    connect: async (url, observe) => {
      const client = new pg.Client({ connectionString: url })
      client.on("error", () => observe.down())
      client.on("end", () => observe.down())
      client.on("notification", (n) => observe.message(Number(n.payload)))
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
      subscriber.notifications.on(channel, (payload: string) => observe.message(Number(payload)))
      subscriber.events.on("error", () => observe.down())
      subscriber.events.on("reconnect", () => observe.down())
      subscriber.events.on("connected", () => observe.up())
      await subscriber.connect()
      await subscriber.listenTo(channel)
      return () => subscriber.close().catch(() => {})
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
        (payload) => observe.message(Number(payload)),
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
        connection: url,
        channels: [channel],
        reconnect: Schedule.spaced(`${RETRY_MS} millis`),
        liveness: { interval: "500 millis", timeout: "500 millis" },
        connectTimeout: "1 second"
      }),
    (message) => Number(message.payload)
  ),
  {
    name: "ioredis (raw: resubscribes)",
    kind: "redis",
    connect: async (url, observe) => {
      const client = new Redis(url, { retryStrategy: () => RETRY_MS, maxRetriesPerRequest: null })
      let ready = false
      client.on("error", () => {})
      client.on("close", () => observe.down())
      client.on("ready", () => {
        if (ready) observe.up()
        ready = true
      })
      client.on("message", (_channel: string, message: string) => observe.message(Number(message)))
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
      await client.subscribe(channel, (message) => observe.message(Number(message)))
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
  readonly only?: { readonly kinds: ReadonlyArray<Adapter["kind"]>; readonly otherwise: string }
  /** Applies the fault; resolves when it is over (or at once). `big` sends one numbered message of that size. */
  readonly apply: (proxy: FaultProxy.FaultProxy, big: (bytes: number) => void) => Promise<void>
  readonly observeMs: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const OVERSIZE = 32 * 1024 * 1024
/** A numbered message padded to `bytes` (`Number` ignores the trailing spaces). */
const padded = (n: number, bytes: number) => String(n).padEnd(bytes, " ")

const faults: ReadonlyArray<Fault> = [
  { name: "server kill", apply: (proxy) => Effect.runPromise(proxy.reset), observeMs: 2000 },
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
  readonly detectedMs: number | "no" | "n/a"
  readonly recoveredMs: number | "no"
  readonly lost: number
  readonly lossSignalled: boolean
  readonly resumeSignalled: boolean
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
        channel = `faults_${process.pid}_${++runs}`
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
            const timer = setInterval(() => {
              const value = ++n
              sent.push(value)
              producer.query("SELECT pg_notify($1, $2)", [channel, String(value)]).catch(() => {})
            }, 10)
            yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
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
        const close = yield* Effect.promise(() =>
          adapter.connect(
            adapter.kind === "ws"
              ? `ws://${proxy.host}:${proxy.port}`
              : adapter.kind === "sse"
                ? `http://${proxy.host}:${proxy.port}/events`
                : adapter.kind === "pg"
                  ? `postgres://postgres@${proxy.host}:${proxy.port}/postgres`
                  : `redis://${proxy.host}:${proxy.port}`,
            {
              message: (value) => {
                received.add(value)
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
        const applied = fault.apply(proxy, big)
        yield* Effect.promise(() => sleep(fault.observeMs - 500))
        // What is sent from here may still be in flight at the close: not counted as lost.
        const inFlightAfter = n
        yield* Effect.promise(() => sleep(500))
        yield* Effect.promise(() => applied)
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
          handlesLeft
        } satisfies Cell
      })
    )
  )

/** A scenario the client cannot express: n/a with the reason, never a guessed cell. */
const notApplicable = (client: string, fault: string, reason: string): Cell => ({
  client,
  fault,
  detectedMs: "n/a",
  recoveredMs: "no",
  lost: 0,
  lossSignalled: false,
  resumeSignalled: false,
  handlesLeft: [],
  notApplicable: reason
})

const cells: Array<Cell> = []
// FAULTS_ONLY=oversize runs only the faults whose name contains it.
for (const fault of faults.filter(
  (f) => process.env.FAULTS_ONLY === undefined || f.name.includes(process.env.FAULTS_ONLY)
)) {
  for (const adapter of [...adapters, ...pgAdapters, ...redisAdapters]) {
    // FAULTS_KINDS=pg,redis runs only those clients.
    if (process.env.FAULTS_KINDS !== undefined && !process.env.FAULTS_KINDS.split(",").includes(adapter.kind)) continue
    if (fault.replay === true && adapter.kind !== "sse") continue
    if (fault.only !== undefined && !fault.only.kinds.includes(adapter.kind)) {
      cells.push(notApplicable(adapter.name, fault.name, fault.only.otherwise))
      continue
    }
    console.error(`faults: ${adapter.name} × ${fault.name}…`)
    cells.push(await run(adapter, fault))
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
  readonly watch: (root: string, observe: FileObserver) => Promise<() => Promise<void>>
}

const fileAdapters: ReadonlyArray<FileAdapter> = [
  {
    name: "StreamEmit FsWatcher.make",
    watch: async (root, observe) => {
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
        Stream.runForEach(handle.messages, (change) =>
          Effect.sync(() => {
            if (change._tag === "Add") observe.added(change.path)
            else if (change._tag === "UnlinkDir") observe.said("UnlinkDir")
          })
        )
      )
      await Effect.runPromise(handle.awaitConnection)
      return () => Effect.runPromise(Scope.close(scope, Exit.void))
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
    handlesLeft
  }
}

if (process.env.FAULTS_KINDS === undefined || process.env.FAULTS_KINDS.split(",").includes("files")) {
  for (const adapter of fileAdapters) {
    cells.push(notApplicable(adapter.name, "kill, restart, black hole, oversize", "a file watcher has no connection"))
    if (process.env.FAULTS_ONLY !== undefined && !"watched directory removed".includes(process.env.FAULTS_ONLY))
      continue
    console.error(`faults: ${adapter.name} × watched directory removed…`)
    cells.push(await runFiles(adapter))
  }
}

const header = ["client", "fault", "detected", "reconnected", "lost", "loss signalled", "handles left after close"]
const lines = cells.map((c) =>
  c.notApplicable !== undefined
    ? [c.client, c.fault, `n/a: ${c.notApplicable}`, "", "", "", ""]
    : [
        c.client,
        c.fault,
        typeof c.detectedMs === "string" ? c.detectedMs : `${c.detectedMs} ms`,
        c.recoveredMs === "no" ? "no" : `${c.recoveredMs} ms`,
        String(c.lost),
        c.lost === 0
          ? "(none lost)"
          : c.lossSignalled
            ? "yes"
            : c.resumeSignalled
              ? "NO: Gap `resumed` (replay asked)"
              : "NO",
        c.handlesLeft.length === 0 ? "0" : c.handlesLeft.join(", ")
      ]
)
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
const format = (row: ReadonlyArray<string>) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ")
console.log([format(header), format(widths.map((w) => "-".repeat(w))), ...lines.map(format)].join("\n"))
const out = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "faults.json")
mkdirSync(dirname(out), { recursive: true })
writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cells }, null, 2)}\n`)
console.error(`wrote ${out}`)
process.exit(0)

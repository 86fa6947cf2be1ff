/**
 * The fault scoreboard (`pnpm faults`): the same faults against StreamEmit and the WebSocket and SSE clients users
 * pick instead, each through a small adapter (connect, collect messages, observe whatever the client offers as
 * "disconnected", "reconnected" and "lost"). A loopback server (WebSocket, or SSE: `id` and `data` the number; it
 * does not replay) numbers its messages (one every 10 ms, one counter for every connection), behind the testkit's
 * fault proxy:
 *
 * - server kill: the proxy resets both sides of the connection;
 * - black hole: the proxy stops forwarding for 3 s without closing anything (a dead NAT entry, a pulled cable).
 *
 * For each client × fault: detected (after how long), reconnected (after how long), messages lost (numbers the server
 * sent to a connection the client had, never received), and whether the client said so. Prints the table and writes
 * bench/results/faults.json.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import * as Http from "node:http"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { fetchEventSource } from "@microsoft/fetch-event-source"
import { Sse } from "@streamemit/sse"
import * as FaultProxy from "@streamemit/testkit/FaultProxy"
import * as WsServer from "@streamemit/testkit/WsServer"
import { WebSocket } from "@streamemit/websocket"
import { Effect, Exit, Schedule, Scope, Stream } from "effect"
import { EventSource } from "eventsource"
import LaunchDarkly from "launchdarkly-eventsource"
import PartySocket from "partysocket/ws"
import ReconnectingWebSocketModule from "reconnecting-websocket"
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
  readonly kind: "ws" | "sse"
  readonly connect: (url: string, observe: Observer) => Promise<() => Promise<void>>
}

const RETRY_MS = 100

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
  {
    name: "StreamEmit WebSocket.make",
    kind: "ws",
    connect: async (url, observe) => {
      const scope = Effect.runSync(Scope.make())
      const handle = await Effect.runPromise(
        Scope.provide(
          WebSocket.make({
            url,
            reconnect: Schedule.spaced(`${RETRY_MS} millis`),
            heartbeat: { interval: "500 millis", timeout: "500 millis" },
            // An attempt into the black hole is given up after a second, as the heartbeat gives up a connection.
            handshakeTimeout: "1 second"
          }),
          scope
        )
      )
      Effect.runFork(
        handle.events.pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event._tag === "Disconnected") observe.down()
              else if (event._tag === "Connected" && event.attempt > 1) observe.up()
              else if (event._tag === "Gap" && event.delivery === "possible-loss") observe.lossSignalled()
            })
          )
        )
      )
      Effect.runFork(
        handle.messages.pipe(Stream.runForEach((text) => Effect.sync(() => observe.message(Number(text)))))
      )
      return () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  },
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
  {
    name: "StreamEmit Sse.make",
    kind: "sse",
    connect: async (url, observe) => {
      const scope = Effect.runSync(Scope.make())
      const handle = await Effect.runPromise(
        Scope.provide(
          Sse.make({
            url,
            reconnect: Schedule.spaced(`${RETRY_MS} millis`),
            // The server sends every 10 ms: a second of silence is a dead connection.
            idleTimeout: "1 second",
            connectTimeout: "1 second"
          }),
          scope
        )
      )
      Effect.runFork(
        handle.events.pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event._tag === "Disconnected") observe.down()
              else if (event._tag === "Connected" && event.attempt > 1) observe.up()
              else if (event._tag === "Gap" && event.delivery === "possible-loss") observe.lossSignalled()
              else if (event._tag === "Gap" && event.delivery === "resumed") observe.resumeSignalled()
            })
          )
        )
      )
      Effect.runFork(
        handle.messages.pipe(Stream.runForEach((event) => Effect.sync(() => observe.message(Number(event.data)))))
      )
      return () => Effect.runPromise(Scope.close(scope, Exit.void))
    }
  },
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
  /** Applies the fault; resolves when it is over (or at once). */
  readonly apply: (proxy: FaultProxy.FaultProxy) => Promise<void>
  readonly observeMs: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const faults: ReadonlyArray<Fault> = [
  { name: "server kill", apply: (proxy) => Effect.runPromise(proxy.reset), observeMs: 2000 },
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
  readonly detectedMs: number | "no"
  readonly recoveredMs: number | "no"
  readonly lost: number
  readonly lossSignalled: boolean
  readonly resumeSignalled: boolean
}

const run = async (adapter: Adapter, fault: Fault): Promise<Cell> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        // Numbers every 10 ms to each open connection, one counter for all: a reconnect shows what it missed.
        let n = 0
        const sentTo = new Map<object, Array<number>>()
        let port: number
        if (adapter.kind === "ws") {
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
        } else {
          const server = yield* sseServer(
            () => ++n,
            () => n,
            sentTo,
            fault.replay === true
          )
          port = (server.address() as { port: number }).port
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
        const close = yield* Effect.promise(() =>
          adapter.connect(
            adapter.kind === "ws" ? `ws://${proxy.host}:${proxy.port}` : `http://${proxy.host}:${proxy.port}/events`,
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
        const applied = fault.apply(proxy)
        yield* Effect.promise(() => sleep(fault.observeMs))
        yield* Effect.promise(() => applied)
        watching = false
        yield* Effect.promise(close)
        // Lost: what the server wrote to a connection the client had (the socket accepted it) and the client never
        // got — what was in flight when the connection died, or sent into the black hole.
        let lost = 0
        for (const sent of sentTo.values()) for (const value of sent) if (!received.has(value)) lost++
        // The last half second's messages may still be in flight at the close: not counted as lost.
        const lastSent = Math.max(0, ...[...sentTo.values()].flat())
        for (let value = lastSent; value > lastSent - 50 && value > 0; value--) {
          if (!received.has(value) && [...sentTo.values()].some((sent) => sent.includes(value))) lost--
        }
        return {
          client: adapter.name,
          fault: fault.name,
          detectedMs: detectedAt === undefined ? "no" : detectedAt - faultAt,
          recoveredMs: recoveredAt === undefined ? "no" : recoveredAt - faultAt,
          lost: Math.max(0, lost),
          lossSignalled: signalled,
          resumeSignalled
        } satisfies Cell
      })
    )
  )

const cells: Array<Cell> = []
for (const fault of faults) {
  for (const adapter of adapters) {
    if (fault.replay === true && adapter.kind !== "sse") continue
    console.error(`faults: ${adapter.name} × ${fault.name}…`)
    cells.push(await run(adapter, fault))
  }
}

const header = ["client", "fault", "detected", "reconnected", "lost", "loss signalled"]
const lines = cells.map((c) => [
  c.client,
  c.fault,
  c.detectedMs === "no" ? "no" : `${c.detectedMs} ms`,
  c.recoveredMs === "no" ? "no" : `${c.recoveredMs} ms`,
  String(c.lost),
  c.lost === 0 ? "(none lost)" : c.lossSignalled ? "yes" : c.resumeSignalled ? "NO: Gap `resumed` (replay asked)" : "NO"
])
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
const format = (row: ReadonlyArray<string>) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ")
console.log([format(header), format(widths.map((w) => "-".repeat(w))), ...lines.map(format)].join("\n"))
const out = join(dirname(fileURLToPath(import.meta.url)), "..", "results", "faults.json")
mkdirSync(dirname(out), { recursive: true })
writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cells }, null, 2)}\n`)
console.error(`wrote ${out}`)
process.exit(0)

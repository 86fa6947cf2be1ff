/**
 * `WebSocket.stream` against a raw `ws` client reading the same local server (in a worker thread), same run:
 * throughput, added latency at 5,000 msg/s, and memory under a consumer that takes 1 ms per message; the peers
 * users pick instead in each, as context.
 */
import { once } from "node:events"
import { Worker } from "node:worker_threads"
import * as NodeWS from "@effect/platform-node/NodeWS"
import { WebSocket } from "@streamemit/websocket"
import { Effect, Fiber, Stream } from "effect"
import * as Socket from "effect/socket/Socket"
import PartySocket from "partysocket/ws"
import ReconnectingWebSocketModule from "reconnecting-websocket"
import WS from "ws"
import {
  compareRates,
  countTo,
  type LatencyClient,
  latencyRounds,
  latencyRows,
  memoryRows,
  peerRow,
  type Row,
  type Suite,
  slowArrayConsumer,
  slowConsumerMemory,
  throughputRow
} from "../harness.ts"

const MESSAGES = 500_000
const SIZE = 100

interface Source {
  readonly url: string
  readonly command: (command: Record<string, unknown>) => Promise<Record<string, unknown>>
  readonly connected: () => Promise<void>
  readonly stop: () => Promise<void>
}

const startSource = async (): Promise<Source> => {
  const worker = new Worker(new URL("../servers/ws-server.ts", import.meta.url))
  const [listening] = (await once(worker, "message")) as [{ port: number }]
  const waitFor = (type: string) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const on = (message: Record<string, unknown>) => {
        if (message.type !== type) return
        worker.off("message", on)
        resolve(message)
      }
      worker.on("message", on)
    })
  return {
    url: `ws://127.0.0.1:${listening.port}`,
    command: (command) => {
      const done = waitFor("done")
      worker.postMessage(command)
      return done
    },
    connected: () => waitFor("connection").then(() => undefined),
    stop: async () => {
      const closed = waitFor("closed")
      worker.postMessage({ cmd: "close" })
      await closed
      await worker.terminate()
    }
  }
}

/** Raw ws: count messages (turned into text, as a user would) until `count`. */
const rawReceive = async (source: Source, count: number, onMessage?: (text: string) => void) => {
  const socket = new WS(source.url, { perMessageDeflate: false })
  const connected = source.connected()
  await once(socket, "open")
  await connected
  let received = 0
  const done = new Promise<void>((resolve) =>
    socket.on("message", (data: Buffer) => {
      const text = data.toString()
      onMessage?.(text)
      if (++received === count) resolve()
    })
  )
  return { socket, done }
}

/** Raw ws through one burst, timed from the burst command to the last message. */
const rawBurst = async (source: Source) => {
  const { socket, done } = await rawReceive(source, MESSAGES)
  const start = performance.now()
  await source.command({ cmd: "burst", count: MESSAGES, size: SIZE })
  await done
  const seconds = (performance.now() - start) / 1000
  socket.terminate()
  return seconds
}

const throughput = async (source: Source) =>
  compareRates({
    items: MESSAGES,
    rounds: 41,
    warmup: 1,
    // Timed from the burst command to the last message: connecting and closing are not the data path.
    baseline: () => rawBurst(source),
    subject: async () => {
      const connected = source.connected()
      const fiber = Effect.runFork(countTo(WebSocket.stream({ url: source.url, reconnect: false }), MESSAGES))
      await connected
      const start = performance.now()
      await source.command({ cmd: "burst", count: MESSAGES, size: SIZE })
      const last = await Effect.runPromise(Fiber.join(fiber))
      return (last - start) / 1000
    }
  })

// A CommonJS module whose default export Node hands over as the class itself; its types describe the module.
const ReconnectingWebSocket = ReconnectingWebSocketModule as unknown as new (
  url: string,
  protocols: Array<string>,
  options: Record<string, unknown>
) => { addEventListener: (type: "message", listener: (event: { data: unknown }) => void) => void; close: () => void }

/**
 * The peers users pick instead (the peers issue): reconnecting wrappers around a WebSocket, here given `ws`, and
 * Effect's own `Socket` (on `ws` through `NodeWS`; its docs suggest a retry around it, which a burst does not need).
 * Each counts messages through its `message` event (Effect's `Socket`: its reader's batches) until `count`, as a
 * user would.
 */
const peers: ReadonlyArray<{
  readonly name: string
  readonly open: (url: string) => {
    readonly on: (listener: (data: unknown) => void) => void
    readonly close: () => void
  }
  /**
   * A consumer that takes 1 ms per message, as a user of this peer writes it; resolves once connected with its
   * stop. Without it, the peer's `message` events go into a queue that a 1 ms/message consumer works through.
   */
  readonly slow?: (url: string) => Promise<() => Promise<void>>
}> = [
  {
    name: "partysocket",
    open: (url) => {
      const socket = new PartySocket(url, [], { WebSocket: WS, maxRetries: 0 })
      return {
        on: (listener) => socket.addEventListener("message", (event) => listener(event.data)),
        close: () => socket.close()
      }
    }
  },
  {
    name: "Effect Socket (NodeWS)",
    open: (url) => {
      let listener: (data: unknown) => void = () => {}
      const fiber = Effect.runFork(
        Effect.scoped(
          Effect.gen(function* () {
            const socket = yield* Socket.makeWebSocket(url)
            const reader = yield* socket.reader
            for (;;) {
              const batch = yield* reader.pull
              for (let i = 0; i < batch.length; i++) listener(batch[i])
            }
          })
        ).pipe(Effect.provide(NodeWS.layerWebSocketConstructor))
      )
      return {
        on: (next) => {
          listener = next
        },
        close: () => {
          fiber.interruptUnsafe()
        }
      }
    },
    // The reader is pulled only as fast as the work goes: the socket pauses at its highWaterMark.
    slow: async (url) => {
      let opened: () => void = () => {}
      const open = new Promise<void>((resolve) => {
        opened = resolve
      })
      const fiber = Effect.runFork(
        Effect.scoped(
          Effect.gen(function* () {
            const socket = yield* Socket.makeWebSocket(url)
            const reader = yield* socket.reader
            opened()
            for (;;) {
              const batch = yield* reader.pull
              for (let i = 0; i < batch.length; i++) yield* Effect.promise(() => sleep(1))
            }
          })
        ).pipe(Effect.provide(NodeWS.layerWebSocketConstructor))
      )
      await open
      return () => Effect.runPromise(Fiber.interrupt(fiber))
    }
  },
  {
    name: "reconnecting-websocket",
    open: (url) => {
      const socket = new ReconnectingWebSocket(url, [], { WebSocket: WS, maxRetries: 0 })
      return {
        on: (listener) => socket.addEventListener("message", (event) => listener(event.data)),
        close: () => socket.close()
      }
    }
  }
]

/** A peer against raw ws, paired rounds as for ours (fewer: a peer is context, not a gate). */
const peerThroughput = (source: Source, peer: (typeof peers)[number]) =>
  compareRates({
    items: MESSAGES,
    rounds: 11,
    warmup: 1,
    baseline: () => rawBurst(source),
    subject: async () => {
      const connected = source.connected()
      const socket = peer.open(source.url)
      let received = 0
      const done = new Promise<void>((resolve) =>
        socket.on(() => {
          if (++received === MESSAGES) resolve()
        })
      )
      await connected
      const start = performance.now()
      await source.command({ cmd: "burst", count: MESSAGES, size: SIZE })
      await done
      const seconds = (performance.now() - start) / 1000
      socket.close()
      return seconds
    }
  })

const LATENCY_MESSAGES = 10_000
const LATENCY_ROUNDS = 7

/** Added latency at 5,000 msg/s: raw, ours and each peer, 10,000 timestamped messages a round (`latencyRounds`). */
const latency = (source: Source) => {
  const raw: LatencyClient = async (record) => {
    const { socket, done } = await rawReceive(source, LATENCY_MESSAGES, (text) => record(Number(text)))
    return async () => {
      await done
      socket.terminate()
    }
  }
  const ours: LatencyClient = async (record) => {
    const connected = source.connected()
    const fiber = Effect.runFork(
      WebSocket.stream({ url: source.url, reconnect: false }).pipe(
        Stream.take(LATENCY_MESSAGES),
        Stream.runForEach((text) => Effect.sync(() => record(Number(text))))
      )
    )
    await connected
    return () => Effect.runPromise(Fiber.join(fiber))
  }
  // The peers, as context: the same messages at the same rate, through each one's `message` event.
  const peer =
    (open: (typeof peers)[number]["open"]): LatencyClient =>
    async (record) => {
      const connected = source.connected()
      const socket = open(source.url)
      let received = 0
      const done = new Promise<void>((resolve) =>
        socket.on((data) => {
          record(Number(typeof data === "string" ? data : decoder.decode(data as Uint8Array)))
          if (++received === LATENCY_MESSAGES) resolve()
        })
      )
      await connected
      return async () => {
        await done
        socket.close()
      }
    }
  return latencyRounds(
    [["raw", raw], ["ours", ours], ...peers.map((p) => [p.name, peer(p.open)] as const)],
    async () => {
      await source.command({ cmd: "rate", count: LATENCY_MESSAGES, perSecond: 5000 })
    },
    LATENCY_ROUNDS
  )
}

const decoder = new TextDecoder()

const FLOOD_MS = 5000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Live heap and peak RSS growth while the source floods for 5 s and the consumer takes 1 ms per message. */
const memory = async (source: Source) => {
  /** `connect` resolves once connected, with a function that stops consuming and cleans up. */
  const measure = (connect: () => Promise<() => Promise<void>>) =>
    slowConsumerMemory(async (settled) => {
      const stop = await connect()
      const flood = await source.command({ cmd: "flood", ms: FLOOD_MS, size: SIZE })
      settled()
      await stop()
      return Number(flood.sent)
    })
  const raw = await measure(async () => {
    const socket = new WS(source.url, { perMessageDeflate: false })
    const connected = source.connected()
    await once(socket, "open")
    await connected
    const consumer = slowArrayConsumer<string>()
    socket.on("message", (data: Buffer) => consumer.push(data.toString()))
    return async () => {
      await consumer.stop()
      socket.terminate()
    }
  })
  const ours = await measure(async () => {
    const connected = source.connected()
    const fiber = Effect.runFork(
      WebSocket.stream({ url: source.url, reconnect: false }).pipe(
        Stream.runForEach(() => Effect.promise(() => sleep(1)))
      )
    )
    await connected
    return () => Effect.runPromise(Fiber.interrupt(fiber))
  })
  // The peers, as context: the same run, each as its users would consume slowly.
  const peerMemory: Array<{
    readonly name: string
    readonly heap: number
    readonly rss: number
    readonly result: number
  }> = []
  for (const peer of peers) {
    const measured = await measure(async () => {
      const connected = source.connected()
      if (peer.slow !== undefined) {
        const stop = await peer.slow(source.url)
        await connected
        return stop
      }
      const socket = peer.open(source.url)
      // What the raw row keeps: each message as a string.
      const consumer = slowArrayConsumer<string>()
      socket.on((data) => consumer.push(String(data)))
      await connected
      return async () => {
        await consumer.stop()
        socket.close()
      }
    })
    peerMemory.push({ name: peer.name, ...measured })
  }
  return { raw, ours, peers: peerMemory }
}

export const suite: Suite = {
  name: "websocket",
  run: async () => {
    const source = await startSource()
    try {
      const rows: Array<Row> = []
      const rates = await throughput(source)
      rows.push(
        throughputRow("websocket", `${MESSAGES / 1000}k × ${SIZE} B: WebSocket.stream vs raw ws`, "msg/s", rates)
      )
      // The peers, as context: no target (the peers issue).
      for (const peer of peers) {
        const peerRates = await peerThroughput(source, peer)
        rows.push(
          peerRow("websocket", `${MESSAGES / 1000}k × ${SIZE} B: peer ${peer.name} vs raw ws`, "msg/s", peerRates)
        )
      }
      rows.push(
        ...latencyRows(
          "websocket",
          `at 5k msg/s, median of ${LATENCY_ROUNDS} rounds`,
          await latency(source),
          { raw: "raw", ours: "ours" },
          "< 1 ms"
        )
      )
      const mem = await memory(source)
      rows.push(
        ...memoryRows(
          "websocket",
          `1 ms/message consumer, 5 s flood (sent: ours ${(mem.ours.result / 1e6).toFixed(2)}M, raw ${(mem.raw.result / 1e6).toFixed(2)}M)`,
          mem.ours,
          mem.raw
        )
      )
      for (const peer of mem.peers) {
        rows.push(
          ...memoryRows(
            "websocket",
            `peer ${peer.name}, same consumer and flood (sent ${(peer.result / 1e6).toFixed(2)}M)`,
            peer,
            mem.raw
          ).map((row) => ({
            ...row,
            case: row.case.replace("peak RSS growth, same run", `peak RSS growth, peer ${peer.name}`)
          }))
        )
      }
      return rows
    } finally {
      await source.stop()
    }
  }
}

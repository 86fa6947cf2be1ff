/**
 * The WebSocket source of the benchmark, in a worker thread so that producing does not share the measured
 * thread. Commands arrive from the parent; each applies to the newest client connection.
 */
import { parentPort } from "node:worker_threads"
import { type WebSocket, WebSocketServer } from "ws"

const port = parentPort!
const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
let client: WebSocket | undefined
server.on("connection", (socket) => {
  client = socket
  port.postMessage({ type: "connection" })
})
server.on("listening", () => port.postMessage({ type: "listening", port: (server.address() as { port: number }).port }))

const now = () => performance.timeOrigin + performance.now()
const payload = (size: number) => "x".repeat(size)

/** Unmasked text frames of `size` bytes, pre-built: the server writes bytes, so the client is what is measured. */
const frames = (count: number, size: number): Buffer => {
  const header = size < 126 ? Buffer.from([0x81, size]) : Buffer.from([0x81, 126, size >> 8, size & 0xff])
  const frame = Buffer.concat([header, Buffer.from(payload(size))])
  return Buffer.concat(Array.from({ length: count }, () => frame))
}

/** Writes `count` frames straight to the TCP socket under ws, honouring the socket's backpressure. */
const writeFrames = async (socket: WebSocket, count: number, size: number, until = Number.POSITIVE_INFINITY) => {
  const tcp = (socket as unknown as { _socket: import("node:net").Socket })._socket
  const batch = 4096
  const full = frames(batch, size)
  let sent = 0
  while (sent < count && now() < until) {
    const n = Math.min(batch, count - sent)
    const ok = tcp.write(n === batch ? full : frames(n, size))
    sent += n
    if (!ok) {
      await new Promise<void>((resolve) => {
        const timer = until === Number.POSITIVE_INFINITY ? undefined : setTimeout(resolve, Math.max(0, until - now()))
        tcp.once("drain", () => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }
  return sent
}

type Command =
  | { readonly cmd: "burst"; readonly count: number; readonly size: number }
  | { readonly cmd: "rate"; readonly count: number; readonly perSecond: number }
  | { readonly cmd: "flood"; readonly ms: number; readonly size: number }
  | { readonly cmd: "close" }

port.on("message", async (command: Command) => {
  const socket = client!
  switch (command.cmd) {
    case "burst": {
      await writeFrames(socket, command.count, command.size)
      port.postMessage({ type: "done" })
      break
    }
    case "rate": {
      // Timestamped messages at a steady rate, in batches of one per millisecond tick.
      const perMs = command.perSecond / 1000
      const start = now()
      let sent = 0
      while (sent < command.count) {
        const due = Math.min(command.count, Math.floor((now() - start) * perMs) + 1)
        for (; sent < due; sent++) socket.send(String(now()))
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      port.postMessage({ type: "done" })
      break
    }
    case "flood": {
      // As fast as the client reads, for `ms`; a client that pauses leaves the bytes in the kernel and here.
      const sent = await writeFrames(socket, Number.POSITIVE_INFINITY, command.size, now() + command.ms)
      port.postMessage({ type: "done", sent })
      break
    }
    case "close": {
      for (const c of server.clients) c.terminate()
      server.close(() => port.postMessage({ type: "closed" }))
      break
    }
  }
})

/**
 * The fault scoreboard's flooding server, in a worker thread so that what it holds for a client that stops reading
 * is not counted in the measured thread's heap. One HTTP server: a WebSocket upgrade is a WebSocket client, any
 * other request an SSE client. On `flood`, it sends the newest client numbered 100-byte messages (1, 2, 3, … as
 * WebSocket text frames, or SSE events with the number as `id` and `data`) as fast as the client reads, for `ms`,
 * honouring the socket's backpressure, and replies with how many it sent. An SSE stream also carries a comment every
 * 250 ms, before, during and after the flood.
 */
import * as Http from "node:http"
import type { Socket } from "node:net"
import { parentPort } from "node:worker_threads"
import { WebSocketServer } from "ws"

const port = parentPort!
const SIZE = 100
const BATCH = 512

/** The newest client: writes one batch of numbered messages from `first`, returning whether to keep writing. */
let client: { readonly write: (first: number) => boolean; readonly writable: Socket } | undefined

const websockets = new WebSocketServer({ noServer: true })
const server = Http.createServer((_request, response) => {
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  response.flushHeaders()
  // A comment now and then, as SSE servers send to keep a quiet stream alive: after the flood the stream goes on.
  const keepAlive = setInterval(() => response.write(": keep-alive\n\n"), 250)
  response.once("close", () => clearInterval(keepAlive))
  client = {
    write: (first) => {
      let chunk = ""
      for (let n = first; n < first + BATCH; n++) chunk += `id: ${n}\ndata: ${String(n).padEnd(SIZE)}\n\n`
      return response.write(chunk)
    },
    writable: response.socket!
  }
})
server.on("upgrade", (request, socket, head) => {
  websockets.handleUpgrade(request, socket, head, (websocket) => {
    const tcp = (websocket as unknown as { _socket: Socket })._socket
    client = {
      // Unmasked text frames written to the TCP socket under ws, so that its backpressure is what we wait on.
      write: (first) => {
        const frames = Buffer.allocUnsafe(BATCH * (SIZE + 2))
        for (let i = 0; i < BATCH; i++) {
          const at = i * (SIZE + 2)
          frames[at] = 0x81
          frames[at + 1] = SIZE
          frames.write(String(first + i).padEnd(SIZE), at + 2, "latin1")
        }
        return tcp.write(frames)
      },
      writable: tcp
    }
  })
})
server.listen(0, "127.0.0.1", () => port.postMessage({ port: (server.address() as { port: number }).port }))

const flood = async (ms: number): Promise<number> => {
  const target = client!
  const until = Date.now() + ms
  let sent = 0
  while (Date.now() < until && !target.writable.destroyed) {
    const drained = target.write(sent + 1)
    sent += BATCH
    if (!drained) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, until - Date.now()))
        function done() {
          clearTimeout(timer)
          target.writable.off("drain", done)
          target.writable.off("close", done)
          resolve()
        }
        target.writable.once("drain", done)
        target.writable.once("close", done)
      })
    }
  }
  return sent
}

port.on("message", async (command: { readonly cmd: "flood"; readonly ms: number } | { readonly cmd: "close" }) => {
  if (command.cmd === "flood") {
    port.postMessage({ sent: await flood(command.ms) })
  } else {
    for (const websocket of websockets.clients) websocket.terminate()
    server.closeAllConnections()
    server.close(() => port.postMessage({ closed: true }))
  }
})

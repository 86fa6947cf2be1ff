/**
 * The servers of the scale suite, in a process of their own: their heap and their file descriptors are not the
 * measured process's (10,000 connections on loopback are 20,000 sockets, above one process's limit here). A
 * WebSocket server and an SSE server, both silent (idle connections) unless a WebSocket asks for a message every so
 * often. Prints their ports as JSON when listening.
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import { WebSocketServer } from "ws"

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, backlog: 4096 })
// `/feed?every=1000`: a message every second on that connection (the tap's row); silent otherwise.
wss.on("connection", (socket, request) => {
  const every = Number(new URL(request.url ?? "/", "http://x").searchParams.get("every") ?? 0)
  if (every <= 0) return
  let n = 0
  const timer = setInterval(() => socket.send(JSON.stringify({ n: ++n })), every)
  socket.on("close", () => clearInterval(timer))
})
const open = new Set<Http.ServerResponse>()
const sse = Http.createServer((_request, response) => {
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" })
  response.write(": open\n\n")
  open.add(response)
  response.on("close", () => open.delete(response))
})
sse.keepAliveTimeout = 0
sse.listen({ port: 0, host: "127.0.0.1", backlog: 4096 })
let ready = 0
const announce = () => {
  if (++ready < 2) return
  process.stdout.write(
    `${JSON.stringify({ ws: (wss.address() as Net.AddressInfo).port, sse: (sse.address() as Net.AddressInfo).port })}\n`
  )
}
wss.on("listening", announce)
sse.on("listening", announce)

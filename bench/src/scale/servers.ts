/**
 * Starts the scale suite's servers (`server.ts`) in a child process and returns their URLs: the measured process
 * holds only the clients' side of each connection.
 */
import { type ChildProcess, spawn } from "node:child_process"
import type { Connector, ConnectorError } from "@streamemit/core"
import { Sse } from "@streamemit/sse"
import { WebSocket } from "@streamemit/websocket"
import { Effect, Scope } from "effect"
import { EventSource } from "eventsource"
import WS from "ws"

export const startServers = async (): Promise<{
  readonly process: ChildProcess
  readonly wsUrl: string
  readonly sseUrl: string
}> => {
  const child = spawn(process.execPath, [new URL("./server.ts", import.meta.url).pathname], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const ports = await new Promise<{ ws: number; sse: number }>((resolve) =>
    child.stdout!.once("data", (line: Buffer) => resolve(JSON.parse(line.toString())))
  )
  return {
    process: child,
    wsUrl: `ws://127.0.0.1:${ports.ws}/feed`,
    sseUrl: `http://127.0.0.1:${ports.sse}/events`
  }
}

/**
 * Opens one idle connection as its users would hold it: a raw client with the listeners a program needs (messages,
 * and `error`, without which a network error crashes the process), or a handle in `scope`. `connected` is called
 * once it is open; the returned function closes a raw client (a handle closes with its scope).
 */
export const openConnection = async (
  kind: "ws" | "sse",
  mode: "raw" | "ours",
  urls: { readonly wsUrl: string; readonly sseUrl: string },
  scope: Scope.Scope,
  connected: () => void,
  wsOptions: Partial<WebSocket.Options<string>> = {}
): Promise<() => void> => {
  if (mode === "raw" && kind === "ws") {
    const socket = new WS(urls.wsUrl)
    socket.once("open", connected)
    socket.on("message", () => {})
    socket.on("error", () => {})
    return () => socket.terminate()
  }
  if (mode === "raw") {
    const source = new EventSource(urls.sseUrl)
    source.onopen = connected
    source.onmessage = () => {}
    source.onerror = () => {}
    return () => source.close()
  }
  const make: Effect.Effect<Connector.Handle<unknown, unknown>, ConnectorError.ConnectorError, Scope.Scope> = kind ===
  "ws"
    ? WebSocket.make({ url: urls.wsUrl, ...wsOptions })
    : Sse.make({ url: urls.sseUrl })
  const handle = await Effect.runPromise(Scope.provide(make, scope))
  Effect.runFork(Effect.andThen(handle.awaitConnection, Effect.sync(connected)))
  return () => {}
}

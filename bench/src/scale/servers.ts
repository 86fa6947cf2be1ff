/**
 * Starts the scale suite's servers (`server.ts`) in a child process and returns their URLs: the measured process
 * holds only the clients' side of each connection.
 */
import { type ChildProcess, spawn } from "node:child_process"

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

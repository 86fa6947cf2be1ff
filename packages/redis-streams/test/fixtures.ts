/**
 * What the suites share: the server, keys of their own per test, and an admin connection.
 */
import { Effect, Schedule } from "effect"
import { Redis } from "ioredis"

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
export const target = new URL(REDIS_URL)
export const fast = Schedule.spaced("50 millis")

let names = 0
/** Per module instance: two test files may share a process (worker threads). */
const run = Math.random().toString(36).slice(2, 7)
/** Keys, groups and consumers of their own for every test: tests run concurrently against one server. */
export const unique = (label: string) => `se-streams-${label}-${process.pid}-${run}-${++names}`

/** A connection of the test's own: XADD, XPENDING, CLIENT KILL; deletes the test's stream at the end. */
export const admin = (stream: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Redis(REDIS_URL, { lazyConnect: true })
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.del(stream).then(() => client.quit()))
  )

export const add = (client: Redis, stream: string, from: number, count: number) =>
  Effect.promise(() => {
    const pipeline = client.pipeline()
    for (let i = 0; i < count; i++) pipeline.xadd(stream, "*", "n", String(from + i))
    return pipeline.exec()
  })

/** How many entries of the group are delivered and not acknowledged. */
export const pendingCount = (client: Redis, stream: string, group: string) =>
  Effect.promise(async () => Number(((await client.xpending(stream, group)) as [number])[0]))

export const clientsNamed = (client: Redis, prefix: string) =>
  Effect.promise(() => client.client("LIST") as Promise<string>).pipe(
    Effect.map((list) => list.split("\n").filter((line) => line.includes(` name=${prefix}`)))
  )

export const killClients = (client: Redis, prefix: string) =>
  Effect.flatMap(clientsNamed(client, prefix), (lines) =>
    Effect.forEach(lines, (line) =>
      Effect.promise(() => client.call("CLIENT", "KILL", "ID", /\bid=(\d+)/.exec(line)![1]!) as Promise<unknown>)
    ).pipe(Effect.as(lines.length))
  )

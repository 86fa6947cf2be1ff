/**
 * On a real Redis Cluster started by the suite (3 masters, loopback ports): a consumer of two hash-tagged streams
 * with its dead letters, a reconnect with the pending entries re-read, the relay, the reader, a lease, and keys of
 * different slots refused.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Delivery, type Lifecycle } from "@streamemit/core"
import { Expect, Wait } from "@streamemit/testkit"
import * as RedisCluster from "@streamemit/testkit/RedisCluster"
import { Effect, Schedule, Stream } from "effect"
import { Cluster } from "ioredis"
import { RedisStreams } from "../src/index.ts"
import { slotOf } from "../src/internal/redis.ts"

let cluster: RedisCluster.RedisCluster

beforeAll(async () => {
  cluster = await RedisCluster.start({ masters: 3, replicas: 0 })
}, 60_000)
afterAll(() => cluster?.stop())

let names = 0
const unique = (label: string) => `se-${label}-${process.pid}-${++names}`
const connection = () => ({ cluster: cluster.nodes.map((n) => `redis://${n.host}:${n.port}`) })

/** A cluster client of the test's own, closed with the test. */
const admin = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Cluster(cluster.nodes.map((n) => ({ host: n.host, port: n.port })))
    await client.ping()
    return client
  }),
  (client) => Effect.promise(() => client.quit())
)

const collect = <A>(signals: Stream.Stream<Lifecycle.Signal<A>, unknown>) =>
  Effect.gen(function* () {
    const seen: Array<Lifecycle.Signal<A>> = []
    yield* signals.pipe(
      Stream.runForEach((signal) => Effect.sync(() => seen.push(signal))),
      Effect.forkChild({ startImmediately: true })
    )
    return { seen, messages: () => seen.flatMap((s) => (s._tag === "Message" ? [s.message] : [])) }
  })

describe("RedisStreams on a Redis Cluster", () => {
  it.live("two streams of one hash tag on their node: deliveries, acks, term to the dead letters, a reconnect", () =>
    Effect.gen(function* () {
      const tag = unique("tag")
      const [eu, us, dead] = [`{${tag}}:eu`, `{${tag}}:us`, `{${tag}}:dead`]
      const client = yield* admin
      const consumer = unique("c")
      const handle = yield* RedisStreams.make({
        connection: connection(),
        stream: [eu, us],
        group: "g",
        consumer,
        createGroup: "0",
        deadLetter: dead,
        reconnect: Schedule.spaced("100 millis")
      })
      yield* Effect.promise(() => client.xadd(eu, "*", "n", "1").then(() => client.xadd(us, "*", "n", "2")))
      const { seen, messages } = yield* collect(handle.signals)
      yield* Wait.until(() => messages().length === 2, "a delivery from each stream")
      const bySource = new Map(messages().map((d) => [d.source, d]))
      yield* bySource.get(eu)!.ack
      yield* bySource.get(us)!.term("no such region")
      const [[, fields]] = (yield* Effect.promise(() => client.xrange(dead, "-", "+"))) as Array<
        [string, Array<string>]
      >
      assert.strictEqual(fields[fields.indexOf("streamemit-reason") + 1], "term: no such region")
      // A reconnect (the reader's connection killed on its node): a Gap, nothing pending left to re-read.
      yield* Effect.promise(() => client.xadd(eu, "*", "n", "3"))
      yield* Wait.until(() => messages().length === 3, "a third delivery")
      // The cluster client has a connection of that name on each node it talked to: the one blocked in the read.
      let killed: string | undefined
      const killReader = async () => {
        for (const node of cluster.nodes) {
          const nodeAdmin = cluster.admin(node)
          const list = ((await nodeAdmin.client("LIST")) as string).split("\n")
          const reader = list.find(
            (line) => line.includes(` name=streamemit:${consumer} `) && line.includes(" cmd=xreadgroup ")
          )
          if (reader !== undefined) {
            await nodeAdmin.client("KILL", "ID", /\bid=(\d+)/.exec(reader)![1]!)
            killed = `${node.host}:${node.port}`
            return true
          }
        }
        return false
      }
      // Between two reads its last command may be another one: looked for until it is in a read.
      yield* Wait.until(killReader, "the reader's connection, in a read")
      assert.isDefined(killed, "the reader's connection")
      assert.strictEqual(
        killed,
        yield* Effect.promise(async () => {
          const master = await cluster.masterOf(slotOf(eu))
          return `${master.host}:${master.port}`
        })
      )
      yield* Wait.until(() => messages().length === 4, "the unacknowledged third again", 5000)
      assert.strictEqual(messages()[3]!.item.n, "3")
      assert.strictEqual(messages()[3]!.deliveries, 2)
      assert.strictEqual((seen.find((s) => s._tag === "Gap") as Lifecycle.Gap).delivery, "resumed")
      yield* messages()[3]!.ack
      const pending = yield* Effect.promise(() =>
        Promise.all([eu, us].map((s) => client.xpending(s, "g") as Promise<[number]>))
      )
      assert.deepStrictEqual(
        pending.map(([n]) => Number(n)),
        [0, 0]
      )
      yield* Effect.promise(() => client.del(eu, us, dead))
    }).pipe(Effect.scoped)
  )

  it.live("the relay writes and the reader reads through the cluster; withLease holds its key there", () =>
    Effect.gen(function* () {
      const stream = unique("relayed")
      const client = yield* admin
      yield* Stream.run(
        Stream.fromIterable(["a", "b", "c"]),
        RedisStreams.relay({ connection: connection(), stream })
      ).pipe(RedisStreams.withLease({ connection: connection(), key: `{${stream}}:lease`, ttl: "1 second" }))
      const read = yield* RedisStreams.read({ connection: connection(), stream, from: "0" }).pipe(
        Stream.take(3),
        Stream.runCollect
      )
      assert.deepStrictEqual(
        read.map((e) => e.fields.data),
        ["a", "b", "c"]
      )
      // Consumed by a group too, with Delivery.process.
      const handle = yield* RedisStreams.make({ connection: connection(), stream, group: "g", createGroup: "0" })
      let worked = 0
      yield* Delivery.process(handle.messages.pipe(Stream.take(3)), () => Effect.sync(() => worked++))
      assert.strictEqual(worked, 3)
      yield* Effect.promise(() => client.del(stream, `{${stream}}:lease`))
    }).pipe(Effect.scoped)
  )

  it.live("keys of different slots are a Config error naming the option", () =>
    Effect.gen(function* () {
      // Two keys without a common hash tag: find a pair on different slots.
      const a = unique("a")
      let b = unique("b")
      while (slotOf(b) === slotOf(a)) b = unique("b")
      const streams = yield* Effect.exit(RedisStreams.make({ connection: connection(), stream: [a, b], group: "g" }))
      const streamsError = Expect.connectorError(streams)
      assert.strictEqual(streamsError.reason._tag, "Config")
      assert.strictEqual((streamsError.reason as { option?: string }).option, "stream")
      assert.include(streamsError.message, "hash tag")
      const dead = yield* Effect.exit(
        RedisStreams.make({ connection: connection(), stream: a, group: "g", deadLetter: b })
      )
      assert.strictEqual((Expect.connectorError(dead).reason as { option?: string }).option, "deadLetter")
      const db = yield* Effect.exit(
        RedisStreams.make({ connection: { cluster: ["redis://127.0.0.1:7000/2"] }, stream: a, group: "g" })
      )
      assert.strictEqual((Expect.connectorError(db).reason as { option?: string }).option, "connection.cluster")
    }).pipe(Effect.scoped)
  )
})

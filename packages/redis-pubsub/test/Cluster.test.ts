/**
 * Sharded pub/sub on a real Redis Cluster started by the suite (3 masters, 3 replicas, loopback ports): slot
 * routing, a slot that migrates, a failover, a crashed node, and cleanup on every node.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import type { ConnectorError, Lifecycle } from "@streamemit/core"
import { Expect, Wait } from "@streamemit/testkit"
import * as RedisCluster from "@streamemit/testkit/RedisCluster"
import { Effect, Schedule, Stream } from "effect"
import { Cluster } from "ioredis"
import { RedisPubSub } from "../src/index.ts"
import { slotOf } from "../src/internal/slot.ts"

const fast = Schedule.spaced("100 millis")
const errorOf = Expect.connectorError
let cluster: RedisCluster.RedisCluster

beforeAll(async () => {
  cluster = await RedisCluster.start({ masters: 3, replicas: 1 })
}, 60_000)
afterAll(() => cluster?.stop())

let names = 0
const unique = (label: string) => `se:${label}:${process.pid}:${++names}`
const seeds = () => cluster.nodes.map((n) => `redis://${n.host}:${n.port}`)
const key = (node: RedisCluster.Node) => `${node.host}:${node.port}`

/** One new channel name per distinct master, in the cluster's current topology. */
const channelsOnEveryMaster = async (label: string) => {
  const byMaster = new Map<string, string>()
  for (let i = 0; byMaster.size < 3 && i < 1000; i++) {
    const channel = unique(label)
    const master = key(await cluster.masterOf(slotOf(channel)))
    if (!byMaster.has(master)) byMaster.set(master, channel)
  }
  return [...byMaster.values()]
}

/** Moves `slot` to another master the way `redis-cli --cluster reshard` does (the slot holds no keys). */
const migrate = async (slot: number, to: RedisCluster.Node) => {
  const from = await cluster.masterOf(slot)
  const [source, target] = [cluster.admin(from), cluster.admin(to)]
  const [sourceId, targetId] = [await source.cluster("MYID"), await target.cluster("MYID")]
  await target.cluster("SETSLOT", slot, "IMPORTING", sourceId as string)
  await source.cluster("SETSLOT", slot, "MIGRATING", targetId as string)
  await target.cluster("SETSLOT", slot, "NODE", targetId as string)
  await source.cluster("SETSLOT", slot, "NODE", targetId as string)
  await cluster.settled()
}

/** An ioredis Cluster of the test's own, as an independent producer. */
const producer = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Cluster(cluster.nodes.slice(0, 3))
    client.on("error", () => {})
    await new Promise((resolve) => client.once("ready", resolve))
    return client
  }),
  (client) => Effect.sync(() => client.disconnect())
)

/** Connections named `name` on every live node. */
const connectionsNamed = (name: string) =>
  Effect.promise(async () => {
    let count = 0
    for (const node of cluster.nodes) {
      const list = (await cluster
        .admin(node)
        .client("LIST")
        .catch(() => "")) as string
      count += list.split("\n").filter((line) => line.includes(` name=${name} `)).length
    }
    return count
  })

const collect = (handle: RedisPubSub.Handle) =>
  Effect.gen(function* () {
    const signals: Array<Lifecycle.Signal<RedisPubSub.Message>> = []
    yield* handle.signals.pipe(
      Stream.runForEach((s) => Effect.sync(() => signals.push(s))),
      Effect.forkChild({ startImmediately: true })
    )
    const payloads = () => signals.flatMap((s) => (s._tag === "Message" ? [s.message.payload] : []))
    return { signals, payloads }
  })

/** A sharded subscriber on a channel of its own, connected, with what it has seen so far; and a producer. */
const shardedSubscriber = (label: string) =>
  Effect.gen(function* () {
    const publisher = yield* producer
    const channel = unique(label)
    const handle = yield* RedisPubSub.make({
      connection: { cluster: seeds() },
      channels: [channel],
      sharded: true,
      reconnect: fast
    })
    const seen = yield* collect(handle)
    yield* Wait.status(handle, "Connected")
    return { publisher, channel, handle, ...seen }
  })

/** The masters now, one per initial slot range. */
const masters = () => Promise.all([0, 5461, 10923].map((slot) => cluster.masterOf(slot)))

describe("RedisPubSub on a Redis Cluster", () => {
  it.live("the slot of a channel is the one the server computes (hash tags, unicode, odd braces)", () =>
    Effect.promise(async () => {
      const client = cluster.admin(cluster.nodes[0]!)
      const keys = ["", "a", "{user1000}.following", "{}.x", "x{}", "{a}{b}", "a{", "}{x}", "{{x}}", "日本{語}", "𝄞"]
      for (let i = 0; i < 200; i++) keys.push(`se:${i}:${"é".repeat(i % 7)}{t${i % 13}}`.slice(0, 5 + (i % 40)))
      for (const k of keys) assert.strictEqual(slotOf(k), await client.cluster("KEYSLOT", k), `the slot of ${k}`)
    })
  )

  it.live("sharded channels are SSUBSCRIBEd on the master serving each slot; live (un)subscribe routes too", () =>
    Effect.gen(function* () {
      const channels = yield* Effect.promise(() => channelsOnEveryMaster("spread"))
      assert.strictEqual(channels.length, 3)
      const [first, second, third] = channels as [string, string, string]
      const connectionName = unique("spread").replaceAll(":", "-")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const handle = yield* RedisPubSub.make({
            connection: { cluster: cluster.nodes.slice(0, 1).map((n) => ({ ...n, connectionName })) },
            channels: [first, second],
            sharded: true
          })
          yield* Wait.status(handle, "Connected")
          // A seed was asked for the topology, then one subscriber per master serving a channel.
          assert.strictEqual((yield* handle.connection).length, 2)
          const { payloads } = yield* collect(handle)
          assert.strictEqual(yield* handle.publish(first, "1"), 1)
          assert.strictEqual(yield* handle.publish(second, "2"), 1)
          yield* handle.subscribe(third)
          assert.strictEqual((yield* handle.connection).length, 3)
          assert.strictEqual(yield* handle.publish(third, "3"), 1)
          yield* Wait.until(() => payloads().length === 3, "a message from every master")
          assert.sameMembers(payloads(), ["1", "2", "3"])
          yield* handle.unsubscribe(first)
          assert.strictEqual(yield* handle.publish(first, "gone"), 0)
          assert.isAbove(yield* connectionsNamed(connectionName), 3)
        })
      )
      // Subscribers, seed and publisher: nothing of ours is left on any node once the scope ended.
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(connectionsNamed(connectionName), (n) => n === 0)),
        "no connection of ours on any node"
      )
    })
  )

  it.live("a slot that migrates to another master: subscribe there, Gap, then live — nothing duplicated", () =>
    Effect.gen(function* () {
      const { publisher, channel, handle, signals, payloads } = yield* shardedSubscriber("migrating")
      for (const n of ["1", "2"]) yield* Effect.promise(() => publisher.spublish(channel, n))
      yield* Wait.until(() => payloads().length === 2, "2 messages before the move")

      const slot = slotOf(channel)
      const from = yield* Effect.promise(() => cluster.masterOf(slot))
      const to = (yield* Effect.promise(masters)).find((m) => key(m) !== key(from))!
      yield* Effect.promise(() => migrate(slot, to))
      yield* Wait.until(() => signals.some((s) => s._tag === "Gap"), "a Gap after the slot moved")
      yield* Wait.status(handle, "Connected")

      for (const n of ["3", "4"]) yield* Effect.promise(() => publisher.spublish(channel, n))
      yield* Wait.until(() => payloads().length === 4, "2 messages after the move")
      assert.deepStrictEqual(payloads(), ["1", "2", "3", "4"])
      const disconnected = signals.find((s): s is Lifecycle.Disconnected => s._tag === "Disconnected")!
      assert.include(disconnected.error.message, "slot moved")
      assert.strictEqual((signals.find((s) => s._tag === "Gap") as Lifecycle.Gap).delivery, "possible-loss")
      const [subscriber] = yield* handle.connection
      assert.strictEqual(subscriber!.options.port, to.port, "now subscribed on the slot's new master")
    }).pipe(Effect.scoped)
  )

  it.live("a failover: the replica takes over and the subscriber follows it", () =>
    Effect.gen(function* () {
      const { publisher, channel, handle, signals, payloads } = yield* shardedSubscriber("failover")
      yield* Effect.promise(() => publisher.spublish(channel, "before"))
      yield* Wait.until(() => payloads().length === 1, "a message before the failover")

      const master = yield* Effect.promise(() => cluster.masterOf(slotOf(channel)))
      const masterId = yield* Effect.promise(() => cluster.admin(master).cluster("MYID") as Promise<string>)
      const replicaLine = yield* Effect.promise(
        () => cluster.admin(master).cluster("REPLICAS", masterId) as Promise<Array<string>>
      )
      const [host, port] = replicaLine[0]!.split(" ")[1]!.split("@")[0]!.split(":")
      yield* Effect.promise(() => cluster.admin({ host: host!, port: Number(port) }).cluster("FAILOVER"))
      yield* Wait.until(() => signals.some((s) => s._tag === "Gap"), "a Gap after the failover")
      yield* Effect.promise(() => cluster.settled())

      yield* Effect.promise(() => publisher.spublish(channel, "after"))
      yield* Wait.until(() => payloads().length === 2, "a message from the new master")
      assert.deepStrictEqual(payloads(), ["before", "after"])
      const [subscriber] = yield* handle.connection
      assert.strictEqual(subscriber!.options.port, Number(port), "subscribed on the promoted replica")
    }).pipe(Effect.scoped)
  )

  it.live("bad cluster connections fail at once: Config, naming the option and the problem", () =>
    Effect.gen(function* () {
      const empty = errorOf(
        yield* RedisPubSub.stream({ connection: { cluster: [] }, channels: ["a"] }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.strictEqual((empty.reason as ConnectorError.Config).option, "connection.cluster")
      const db = errorOf(
        yield* RedisPubSub.stream({ connection: { cluster: ["redis://127.0.0.1:1/2"] }, channels: ["a"] }).pipe(
          Stream.runDrain,
          Effect.exit
        )
      )
      assert.strictEqual((db.reason as ConnectorError.Config).option, "connection.cluster")
      // The shared standalone server is no cluster.
      const standalone = errorOf(
        yield* RedisPubSub.stream({
          connection: { cluster: [process.env.REDIS_URL ?? "redis://127.0.0.1:6379"] },
          channels: ["a"],
          reconnect: fast
        }).pipe(Stream.runDrain, Effect.exit)
      )
      assert.strictEqual(standalone.reason._tag, "Config")
      assert.include(standalone.message, "cluster support is disabled")
      // A plain connection to a cluster node that does not serve the channel's slot: MOVED, said plainly.
      const channel = unique("moved")
      const owner = yield* Effect.promise(() => cluster.masterOf(slotOf(channel)))
      const otherMaster = (yield* Effect.promise(masters)).find((m) => key(m) !== key(owner))!
      const moved = errorOf(
        yield* RedisPubSub.stream({
          connection: `redis://${otherMaster.host}:${otherMaster.port}`,
          channels: [channel],
          sharded: true,
          reconnect: fast
        }).pipe(
          Stream.runDrain,
          Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.die("no error within 5 s") }),
          Effect.exit
        )
      )
      assert.strictEqual(moved.reason._tag, "Config")
      assert.include(moved.message, "MOVED")
    })
  )

  it.live(
    "non-sharded channels and patterns: one subscriber anywhere; when its node crashes, another seed serves",
    () =>
      Effect.gen(function* () {
        const channel = unique("plain")
        const prefix = unique("pattern")
        // The first seed is the node the subscriber lands on; the second takes over once it is gone.
        const [doomed, survivor] = [cluster.nodes[0]!, cluster.nodes[1]!]
        const handle = yield* RedisPubSub.make({
          connection: { cluster: [doomed, survivor].map((n) => `redis://${n.host}:${n.port}`) },
          channels: [channel],
          patterns: [`${prefix}.*`],
          reconnect: fast
        })
        const { signals, payloads } = yield* collect(handle)
        yield* Wait.status(handle, "Connected")
        assert.strictEqual((yield* handle.connection)[0]!.options.port, doomed.port)
        // Through one node: PUBLISHes sent to different nodes reach a subscriber over the cluster bus in no set order.
        const first = cluster.admin(doomed)
        yield* Effect.promise(() => first.publish(channel, "1"))
        yield* Effect.promise(() => first.publish(`${prefix}.x`, "2"))
        yield* Wait.until(() => payloads().length === 2, "a channel and a pattern message")

        yield* Effect.promise(() => cluster.kill(doomed))
        yield* Wait.until(() => signals.some((s) => s._tag === "Gap"), "a Gap after the crash")
        assert.strictEqual((yield* handle.connection)[0]!.options.port, survivor.port)
        const direct = cluster.admin(survivor)
        yield* Effect.promise(() => direct.publish(channel, "3"))
        yield* Effect.promise(() => direct.publish(`${prefix}.y`, "4"))
        yield* Wait.until(() => payloads().length === 4, "messages after the crash")
        assert.deepStrictEqual(payloads(), ["1", "2", "3", "4"])
      }).pipe(Effect.scoped)
  )
})

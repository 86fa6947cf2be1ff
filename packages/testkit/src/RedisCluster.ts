/**
 * Import it as `@streamemit/testkit/RedisCluster` (not from the barrel, which does not load ioredis).
 *
 * A real Redis Cluster of the tests' own: `redis-server --cluster-enabled yes` processes on free loopback ports,
 * joined by `redis-cli --cluster create`, stopped and removed by `stop`. The shared server on 6379 is untouched.
 *
 * @since 0.2.0
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { Redis } from "ioredis"

const run = promisify(execFile)
const REDIS_SERVER = process.env.REDIS_SERVER ?? "redis-server"
const REDIS_CLI = process.env.REDIS_CLI ?? "redis-cli"

/**
 * @since 0.2.0
 * @category models
 */
export interface Node {
  readonly host: string
  readonly port: number
}

/**
 * @since 0.2.0
 * @category models
 */
export interface RedisCluster {
  readonly nodes: ReadonlyArray<Node>
  /** A plain connection to `node`, closed by `stop`. */
  readonly admin: (node: Node) => Redis
  /** The master serving `slot` now, as the cluster reports it. */
  readonly masterOf: (slot: number) => Promise<Node>
  /** Waits until every live node reports `cluster_state:ok` and the same master for every slot. */
  readonly settled: () => Promise<void>
  /** Stops one node's process (SIGKILL: a crash, not a shutdown). */
  readonly kill: (node: Node) => Promise<void>
  readonly stop: () => Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

const until = async (what: string, check: () => Promise<boolean>, withinMillis = 20_000) => {
  const deadline = Date.now() + withinMillis
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`the test cluster: ${what} not within ${withinMillis} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Starts `masters` masters with `replicas` replicas each and waits until the cluster is ready.
 *
 * @since 0.2.0
 * @category constructors
 */
export const start = async (options: { masters: number; replicas: number }): Promise<RedisCluster> => {
  const dir = await mkdtemp(join(tmpdir(), "streamemit-redis-cluster-"))
  const count = options.masters * (1 + options.replicas)
  const processes = new Map<number, ChildProcess>()
  const admins: Array<Redis> = []
  const nodes: Array<Node> = []
  const stop = async () => {
    for (const client of admins) client.disconnect()
    await Promise.all(
      [...processes.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            child.once("exit", () => resolve())
            child.kill("SIGKILL")
          })
      )
    )
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < count; i++) {
      const [port, busPort] = [await freePort(), await freePort()]
      // cluster-config-file is relative to --dir: one directory per node.
      const nodeDir = await mkdtemp(join(dir, `${port}-`))
      const child = spawn(
        REDIS_SERVER,
        [
          ...["--port", String(port), "--cluster-port", String(busPort), "--bind", "127.0.0.1"],
          ...["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"],
          ...["--dir", nodeDir, "--save", "", "--appendonly", "no", "--logfile", join(nodeDir, "log")]
        ],
        { stdio: "ignore" }
      )
      const failed = new Promise<never>((_, reject) =>
        child.once("error", (cause) =>
          reject(new Error(`cannot start ${REDIS_SERVER} (the cluster tests need it on PATH): ${cause.message}`))
        )
      )
      failed.catch(() => {})
      processes.set(port, child)
      nodes.push({ host: "127.0.0.1", port })
      await Promise.race([
        failed,
        until(`node ${port} answering`, async () => {
          const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null })
          probe.on("error", () => {})
          try {
            await probe.connect()
            return (await probe.ping()) === "PONG"
          } finally {
            probe.disconnect()
          }
        })
      ])
    }
    await run(REDIS_CLI, [
      "--cluster",
      "create",
      ...nodes.map((n) => `${n.host}:${n.port}`),
      "--cluster-replicas",
      String(options.replicas),
      "--cluster-yes"
    ])
  } catch (cause) {
    await stop()
    throw cause
  }
  const admin = (node: Node) => {
    const client = new Redis({ ...node, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    client.on("error", () => {})
    admins.push(client)
    return client
  }
  const live = () => nodes.filter((n) => processes.get(n.port)?.exitCode === null && !processes.get(n.port)?.killed)
  const slotsOf = async (node: Node) => {
    const client = admin(node)
    try {
      return await client.cluster("SLOTS")
    } finally {
      client.disconnect()
    }
  }
  const masterOf = async (slot: number) => {
    for (const node of live()) {
      const ranges = await slotsOf(node).catch(() => undefined)
      const range = ranges?.find(([from, to]) => from <= slot && slot <= to)
      const master = range?.[2]
      if (master !== undefined) return { host: master[0], port: master[1] }
    }
    throw new Error(`no master serves slot ${slot}`)
  }
  const settled = () =>
    until("every node ok and agreeing on the slots", async () => {
      const views = await Promise.all(
        live().map(async (node) => {
          const client = admin(node)
          try {
            const info = (await client.cluster("INFO")) as string
            if (!info.includes("cluster_state:ok")) return undefined
            const ranges = await client.cluster("SLOTS")
            const covered = ranges.reduce((n, [from, to]) => n + (to - from + 1), 0)
            if (covered !== 16_384) return undefined
            return JSON.stringify(ranges.map(([from, to, master]) => [from, to, master?.[1]]).sort())
          } finally {
            client.disconnect()
          }
        })
      )
      return views.every((view) => view !== undefined && view === views[0])
    })
  const kill = (node: Node) =>
    new Promise<void>((resolve) => {
      const child = processes.get(node.port)!
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })
  await settled()
  return { nodes, admin, masterOf, settled, kill, stop }
}

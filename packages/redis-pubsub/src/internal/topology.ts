/**
 * A Redis Cluster's topology as `CLUSTER SLOTS` reports it: the master serving each slot, and every node seen.
 *
 * @internal
 */
import type { Redis, RedisOptions } from "ioredis"

export const address = (settings: RedisOptions) => `${settings.host ?? "127.0.0.1"}:${settings.port ?? 6379}`

/** Slot → the address of the master serving it, read with CLUSTER SLOTS. */
export interface Topology {
  readonly slots: ReadonlyArray<string | undefined>
  /** Every node seen, masters and replicas: the next attempt reads the topology from them if the seeds are down. */
  readonly nodes: ReadonlyArray<RedisOptions>
}

type SlotRange = [number, number, ...Array<[string, number, ...Array<unknown>]>]

export const readTopology = (client: Redis, seed: RedisOptions): Promise<Topology> =>
  (client.cluster("SLOTS") as Promise<Array<SlotRange>>).then((ranges) => {
    const slots = new Array<string | undefined>(16_384).fill(undefined)
    const nodes = new Map<string, RedisOptions>()
    for (const [from, to, ...servers] of ranges) {
      servers.forEach(([host, port], i) => {
        // An empty host means "the address you reached me at".
        const node = { host: host === "" || host === "?" ? seed.host : host, port }
        nodes.set(address(node), node)
        if (i === 0) slots.fill(address(node), from, to + 1)
      })
    }
    return { slots, nodes: [...nodes.values()] }
  })

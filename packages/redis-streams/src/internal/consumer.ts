/**
 * The group consumer's driver. Per connection: create the group, read this consumer's own pending entries again
 * (from id 0), then claim entries of dead consumers (`XAUTOCLAIM`) and read new ones (`>`), never holding more than
 * `maxInFlight` unacknowledged deliveries. Across connections (the handle's lifetime): the acknowledging
 * connection, the naks waiting for their delay, and the renewal of long work.
 *
 * Over 500 lines on purpose: one group consumer's driver — its Lua scripts, the pending re-read, the claims, the
 * acknowledging connection, the delayed naks and the renewal — share one connection's state; split, each part
 * would need all of it passed around.
 *
 * @internal
 */
import { Connector, ConnectorError, Delivery, type Driver } from "@streamemit/core"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis } from "ioredis"
import {
  besideStream,
  connector,
  type Entry,
  entryOf,
  error,
  client as newClient,
  openReader,
  type Reply,
  redisError,
  sizeOf,
  type Target
} from "./redis.ts"

/**
 * What to do with an entry the `schema` rejects: fail the stream (the entry stays pending), acknowledge it and
 * count it as skipped, or move it to the dead letters.
 */
export type OnDecodeError = "fail" | "skip" | "dead-letter"

export interface Resolved<A> {
  readonly common: Connector.Resolved<Delivery.Delivery<A>>
  readonly target: Target
  readonly streams: ReadonlyArray<string>
  readonly group: string
  readonly consumer: string
  readonly createGroup: "$" | "0" | false
  readonly batch: number
  readonly blockMillis: number
  readonly maxInFlight: number
  readonly claimAfterMillis: number | undefined
  readonly claimEveryMillis: number
  readonly maxDeliveries: number | undefined
  readonly deadLetter: string | undefined
  readonly renewEveryMillis: number | undefined
  readonly decode: ((entry: Entry) => Result.Result<A, { readonly message: string }>) | undefined
  readonly onDecodeError: OnDecodeError
}

/** Why an entry went to the dead letters: the label of `streamemit_dead_lettered_total`. */
type DeadLetterReason = "max-deliveries" | "term" | "decode"

export const deadLetteredTotal: Metric.Counter<number> = Metric.counter("streamemit_dead_lettered_total", {
  description: "Entries moved to the dead letters (or, without them, acknowledged) without their work done",
  incremental: true
})

const LUA_HELPERS = `
local function field(list, name)
  for i = 1, #list, 2 do if list[i] == name then return list[i + 1] end end
  return nil
end`

/**
 * Creates the group with its read counter set (`ENTRIESREAD`), so that entries trimmed before it read them can
 * be counted from the start: from "$" every entry so far counts as read; from "0", those already trimmed.
 */
const CREATE = `${LUA_HELPERS}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'MKSTREAM', 'ENTRIESREAD', 0)
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local added = field(info, 'entries-added')
local read = added
if ARGV[2] == '0' then read = added - field(info, 'length') end
return redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'ENTRIESREAD', read)`

/**
 * The key (a hash, in the stream's hash slot) where a group's entries already reported as trimmed are counted.
 */
export const lostKey = (stream: string) => besideStream(stream, ":streamemit-lost")

/**
 * Entries trimmed before the group read them, not reported yet. The group's read counter (`entries-read`, kept
 * exact from its creation with `ENTRIESREAD`) counts the entries it was given; once it has read up to the
 * stream's last entry, every entry added and not read is gone. The total reported so far is kept per group at
 * `lostKey`, so that of the group's consumers one reports each loss, once.
 */
const TRIMMED = `${LUA_HELPERS}
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last = field(info, 'last-generated-id')
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  if field(group, 'name') == ARGV[1] then
    local read = field(group, 'entries-read')
    if not read or field(group, 'last-delivered-id') ~= last then return 0 end
    local total = field(info, 'entries-added') - read
    local reported = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
    if total <= reported then return 0 end
    redis.call('HSET', KEYS[2], ARGV[1], total)
    return total - reported
  end
end
return 0`

/** A nak whose delay is over: claimed again (a delivery) only if still this consumer's; with its count. */
const NAK_DUE = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if not pending[1] or pending[1][2] ~= ARGV[2] then return { {}, 0 } end
local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3])
return { claimed, redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)[1][4] }`

/** Resets the idle time of entries still pending for this consumer (not those another consumer claimed since). */
const RENEW = `
local renewed = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed`

/** Unacknowledged deliveries of one connection; reading waits while there are `maxInFlight`. */
interface Flight {
  count: number
  wake: (() => void) | undefined
}

/** What a delivery's settlement needs to know. */
interface Key {
  readonly stream: string
  readonly id: string
  readonly fields: ReadonlyArray<string>
  readonly deliveries: number
  readonly flight: Flight
}

/** A connection of ours: one server's, or a cluster's (routing each command to its slot's master). */
type Client = Redis | Cluster

type Entries = ReadonlyArray<[string, Array<string> | null]>

const consumerClosed = error(
  new ConnectorError.Closed({ message: "the consumer is closed: the entry stays pending and is delivered again" })
)

export const driver = <A>(
  options: Resolved<A>
): Effect.Effect<Driver.Driver<Client, Delivery.Delivery<A>>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { group, consumer } = options
    const context = yield* Effect.context<never>()
    const deadLettered: Record<DeadLetterReason, Metric.Counter<number>> = {
      "max-deliveries": Metric.withAttributes(deadLetteredTotal, {
        connector,
        name: options.common.name,
        reason: "max-deliveries"
      }),
      term: Metric.withAttributes(deadLetteredTotal, { connector, name: options.common.name, reason: "term" }),
      decode: Metric.withAttributes(deadLetteredTotal, { connector, name: options.common.name, reason: "decode" })
    }
    // Acknowledgements (and naks, terms, renewals) go through a connection of their own (the reader blocks),
    // shared across reconnects: a delivery of a connection that died can still be acknowledged. One connection at
    // a time, shared by concurrent acks; a broken one is replaced by the next ack. It closes with the handle.
    let acker: Promise<Client> | undefined
    let closed = false
    /** Naks waiting for their delay, by stream and id: the pending re-read of a new connection leaves them. */
    const delayed = new Map<string, ReturnType<typeof setTimeout>>()
    /** Deliveries in flight, renewed every `renewEvery` (kept only with that option). */
    const held = new Set<Key>()
    let renewTimer: ReturnType<typeof setInterval> | undefined
    /** The live connection's redelivery, for naks whose delay is over. */
    let current: ((client: Client, stream: string, entries: Entries, deliveries: number) => Promise<void>) | undefined
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const timer of delayed.values()) clearTimeout(timer)
        delayed.clear()
        clearInterval(renewTimer)
        acker?.then(
          (client) => client.disconnect(),
          () => {}
        )
      })
    )
    const ackConnection = (): Promise<Client> => {
      if (closed) return Promise.reject(consumerClosed)
      if (acker === undefined) {
        const client = newClient(options.target, `streamemit:${consumer}:ack`)
        // Its failures reach the caller as the ack's error; the next ack connects again.
        client.on("error", () => {})
        client.on("close", () => {
          if (acker === connecting) acker = undefined
        })
        const connecting: Promise<Client> = client.connect().then(
          () => client,
          (cause) => {
            if (acker === connecting) acker = undefined
            client.disconnect()
            throw cause
          }
        )
        acker = connecting
      }
      return acker
    }

    // Acks asked for in the same turn of the event loop go out together: one XACK per stream.
    let acks: Array<{ readonly stream: string; readonly id: string; readonly done: (error?: unknown) => void }> = []
    const sendAcks = async (sending: typeof acks) => {
      const client = await ackConnection()
      const first = sending[0]!.stream
      if (sending.every((a) => a.stream === first)) {
        await client.call("XACK", first, group, ...sending.map((a) => a.id))
        return
      }
      const byStream = new Map<string, Array<string>>()
      for (const a of sending) {
        const ids = byStream.get(a.stream)
        if (ids === undefined) byStream.set(a.stream, [a.id])
        else ids.push(a.id)
      }
      const pipeline = client.pipeline()
      for (const [stream, ids] of byStream) pipeline.call("XACK", stream, group, ...ids)
      const failed = ((await pipeline.exec()) ?? []).find(([cause]) => cause !== null)
      if (failed) throw failed[0]
    }
    const flushAcks = () => {
      const sending = acks
      acks = []
      sendAcks(sending).then(
        () => {
          for (const a of sending) a.done()
        },
        (cause) => {
          for (const a of sending) a.done(cause)
        }
      )
    }
    const acknowledge = (stream: string, id: string) =>
      new Promise<void>((resolve, reject) => {
        if (acks.length === 0) setImmediate(flushAcks)
        acks.push({ stream, id, done: (cause) => (cause === undefined ? resolve() : reject(cause)) })
      })

    /**
     * Moves an entry to the dead letters with its id, stream, group, delivery count and reason, and acknowledges
     * it, in one MULTI; without a dead-letter stream (a `term`), only acknowledges it. Counted either way.
     */
    const deadLetter = async (
      client: Client,
      key: Omit<Key, "flight">,
      reason: DeadLetterReason,
      detail: string
    ): Promise<void> => {
      const multi = client.multi()
      if (options.deadLetter !== undefined) {
        multi.call(
          "XADD",
          options.deadLetter,
          "*",
          ...key.fields,
          "streamemit-id",
          key.id,
          "streamemit-stream",
          key.stream,
          "streamemit-group",
          group,
          "streamemit-deliveries",
          String(key.deliveries),
          "streamemit-reason",
          detail
        )
      }
      multi.call("XACK", key.stream, group, key.id)
      const failed = ((await multi.exec()) ?? []).find(([cause]) => cause !== null)
      if (failed) throw failed[0]
      deadLettered[reason].updateUnsafe(1, context)
    }

    const leave = (key: Key) => {
      if (options.renewEveryMillis !== undefined) held.delete(key)
      const flight = key.flight
      flight.count--
      const wake = flight.wake
      flight.wake = undefined
      wake?.()
    }

    /**
     * A nak: after `delayMillis`, the entry is claimed again by this consumer (`XCLAIM`, which counts a delivery)
     * and delivered on the live connection — unless another consumer claimed it meanwhile. Between connections, it
     * is left pending for the next connection's re-read.
     */
    const later = (key: Key, delayMillis: number) => {
      const tag = `${key.stream}\u0000${key.id}`
      clearTimeout(delayed.get(tag))
      const timer = setTimeout(() => {
        delayed.delete(tag)
        ackConnection()
          .then(async (client) => {
            const [entries, deliveries] = (await client.eval(NAK_DUE, 1, key.stream, group, consumer, key.id)) as [
              Entries,
              number
            ]
            if (entries.length > 0) await current?.(client, key.stream, entries, deliveries)
          })
          .catch(() => {
            if (!closed) later(key, options.blockMillis)
          })
      }, delayMillis)
      delayed.set(tag, timer)
    }

    const settler: Delivery.Settler<Key> = {
      ack: (key) => acknowledge(key.stream, key.id).then(() => leave(key)),
      release: leave,
      nak: (key, delayMillis) => {
        if (closed) return Promise.reject(consumerClosed)
        leave(key)
        later(key, delayMillis)
        return Promise.resolve()
      },
      term: (key, reason) =>
        ackConnection()
          .then((client) => deadLetter(client, key, "term", reason === undefined ? "term" : `term: ${reason}`))
          .then(() => leave(key)),
      failure: redisError
    }

    if (options.renewEveryMillis !== undefined) {
      renewTimer = setInterval(() => {
        if (held.size === 0) return
        const byStream = new Map<string, Array<string>>()
        for (const key of held) {
          const ids = byStream.get(key.stream)
          if (ids === undefined) byStream.set(key.stream, [key.id])
          else ids.push(key.id)
        }
        // Best effort: a renewal that fails is tried again at the next tick; an ack would report the broken link.
        ackConnection()
          .then((client) =>
            Promise.all(Array.from(byStream, ([stream, ids]) => client.eval(RENEW, 1, stream, group, consumer, ...ids)))
          )
          .catch(() => {})
      }, options.renewEveryMillis)
    }

    const streamArgs = ["STREAMS", ...options.streams, ...options.streams.map(() => ">")]

    return {
      connector,
      // The pending entries are read again first on every connection: nothing delivered is forgotten.
      delivery: () => "resumed",
      connect: (session) =>
        Effect.gen(function* () {
          const reader = yield* openReader(options.target, `streamemit:${consumer}`, session as Driver.Session<never>)
          // EVALSHA (loaded once per connection) rather than the script's text every time. A server that lost its
          // scripts fails the check with NOSCRIPT: the reconnect loads it again.
          const trimmedSha = (yield* Effect.tryPromise({
            try: () => reader.script("LOAD", TRIMMED),
            catch: redisError
          })) as string
          const createFrom = options.createGroup
          if (createFrom !== false) {
            for (const stream of options.streams) {
              yield* Effect.tryPromise({
                try: () =>
                  reader.eval(CREATE, 1, stream, group, createFrom).catch((cause: Error) => {
                    if (!/BUSYGROUP/.test(cause.message)) throw cause
                  }),
                catch: redisError
              })
            }
          }
          const gate = yield* Connector.pullGate(session as Driver.Session<never>)
          const flight: Flight = { count: 0, wake: undefined }
          // The read loop runs until this connection's scope closes.
          let open = true

          const deliver = (stream: string, id: string, fields: Array<string>, deliveries: number) => {
            let item: A
            if (options.decode !== undefined) {
              const decoded = options.decode(entryOf(fields))
              if (Result.isFailure(decoded)) return decodeFailed({ stream, id, fields, deliveries }, decoded.failure)
              item = decoded.success
            } else item = entryOf(fields) as A
            flight.count++
            const key: Key = { stream, id, fields, deliveries, flight }
            if (options.renewEveryMillis !== undefined) held.add(key)
            session.push(Delivery.make(settler, key, stream, id, item, deliveries), sizeOf(fields))
          }

          const decodeFailed = (key: Omit<Key, "flight">, failure: { readonly message: string }) => {
            const message = `stream "${key.stream}" entry ${key.id}: ${failure.message}`
            if (options.onDecodeError === "fail") {
              // The entry stays pending: after a fix of the schema, it is read again.
              session.fail(error(new ConnectorError.Decode({ message, cause: failure })))
              return
            }
            const settled =
              options.onDecodeError === "skip"
                ? acknowledge(key.stream, key.id).then(session.skipped)
                : ackConnection().then((client) => deadLetter(client, key, "decode", `decode: ${failure.message}`))
            settled.catch((cause) => session.fail(redisError(cause)))
          }

          /** How many times each entry of `entries` was delivered, from the group's pending list. */
          const deliveryCounts = async (stream: string, entries: Entries) => {
            const counts = new Map<string, number>()
            if (entries.length === 0) return counts
            const pending = (await reader.call(
              "XPENDING",
              stream,
              group,
              entries[0]![0],
              entries[entries.length - 1]![0],
              entries.length,
              consumer
            )) as Array<[string, string, number, number]>
            for (const [id, , , times] of pending) counts.set(id, times)
            return counts
          }

          /**
           * Entries delivered before (our own pending ones, claimed, or nak'd): delivered again, or past
           * `maxDeliveries` moved to the dead letters. `deliveries` is known for a nak (0: look them up). An entry
           * deleted from the stream while pending has no fields: acknowledged, and reported as lost.
           */
          const redeliver = async (client: Client, stream: string, entries: Entries, deliveries: number) => {
            const counts = deliveries === 0 ? await deliveryCounts(stream, entries) : undefined
            let gone = 0
            for (const [id, fields] of entries) {
              // A nak waiting for its delay is delivered when the delay is over, not by the re-read.
              if (delayed.has(`${stream}\u0000${id}`)) continue
              const times = counts === undefined ? deliveries : (counts.get(id) ?? 2)
              if (fields === null) {
                await client.call("XACK", stream, group, id)
                gone++
              } else if (options.maxDeliveries !== undefined && times > options.maxDeliveries) {
                await deadLetter(
                  client,
                  { stream, id, fields, deliveries: times - 1 },
                  "max-deliveries",
                  "max-deliveries"
                )
              } else deliver(stream, id, fields, times)
            }
            if (gone > 0) session.lost(gone)
            session.flush()
          }
          current = (client, stream, entries, deliveries) =>
            redeliver(client, stream, entries, deliveries).catch((cause) => session.fail(redisError(cause)))
          const mine = current
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              open = false
              flight.wake?.()
              if (current === mine) current = undefined
            })
          )

          const claims = new Map(options.streams.map((stream) => [stream, { cursor: "0-0", nextAt: 0 }]))
          /** Entries of dead (or stuck) consumers, idle for claimAfter: ours now, delivered again. */
          const claim = async (stream: string, state: { cursor: string; nextAt: number }, count: number) => {
            const [cursor, claimed, deleted] = (await reader.call(
              "XAUTOCLAIM",
              stream,
              group,
              consumer,
              options.claimAfterMillis!,
              state.cursor,
              "COUNT",
              count
            )) as [string, Array<[string, Array<string> | null]>, Array<string> | undefined]
            session.alive()
            state.cursor = cursor
            // Around the whole pending list, then rest a while.
            if (cursor === "0-0") state.nextAt = Date.now() + options.claimEveryMillis
            // Deleted from the stream while pending (their work may not have been done): Redis dropped them.
            if (deleted !== undefined && deleted.length > 0) session.lost(deleted.length)
            await redeliver(
              reader,
              stream,
              claimed.filter(([, fields]) => fields !== null),
              0
            )
            return claimed.length
          }

          const readLoop = async () => {
            // Own pending entries first (from id 0, page by page, stream by stream), then new ones (">").
            const pendingFrom = new Map(options.streams.map((stream) => [stream, "0"]))
            const returned = new Map<string, number>()
            const trimCheckAt = new Map(options.streams.map((stream) => [stream, 0]))
            while (open) {
              await gate.beforeRead()
              while (flight.count >= options.maxInFlight && open) {
                // Waiting for acknowledgements is not silence: a PING per block keeps the watchdog honest.
                let timer: ReturnType<typeof setTimeout> | undefined
                const acked = await new Promise<boolean>((resolve) => {
                  flight.wake = () => resolve(true)
                  timer = setTimeout(() => resolve(false), options.blockMillis)
                })
                clearTimeout(timer)
                if (!acked && open) {
                  await reader.ping()
                  session.alive()
                }
              }
              if (!open) return
              const count = Math.min(options.batch, options.maxInFlight - flight.count)
              if (pendingFrom.size > 0) {
                const [stream, from] = pendingFrom.entries().next().value!
                const reply = (await reader.call(
                  "XREADGROUP",
                  "GROUP",
                  group,
                  consumer,
                  "COUNT",
                  count,
                  "STREAMS",
                  stream,
                  from
                )) as Reply
                session.alive()
                const entries = reply?.[0]?.[1] ?? []
                if (entries.length === 0) pendingFrom.delete(stream)
                else {
                  pendingFrom.set(stream, entries[entries.length - 1]![0])
                  await redeliver(reader, stream, entries, 0)
                }
                continue
              }
              if (options.claimAfterMillis !== undefined) {
                const now = Date.now()
                let claimed = 0
                for (const [stream, state] of claims) {
                  if (now >= state.nextAt && (claimed = await claim(stream, state, count)) > 0) break
                }
                if (claimed > 0) continue
              }
              // New entries are waited for, up to `block`.
              const reply = (await reader.call(
                "XREADGROUP",
                "GROUP",
                group,
                consumer,
                "COUNT",
                count,
                "BLOCK",
                options.blockMillis,
                ...streamArgs
              )) as Reply
              session.alive()
              returned.clear()
              for (const [stream, entries] of reply ?? []) {
                returned.set(stream, entries.length)
                for (const [id, fields] of entries) if (fields !== null) deliver(stream, id, fields, 1)
              }
              session.flush()
              // Caught up with a stream (fewer than asked for): were entries trimmed before the group read them?
              // At most once a second: the count is cumulative, a late look misses nothing.
              const now = Date.now()
              for (const stream of options.streams) {
                if ((returned.get(stream) ?? 0) >= count || now < trimCheckAt.get(stream)!) continue
                trimCheckAt.set(stream, now + 1000)
                const lost = Number(await reader.evalsha(trimmedSha, 2, stream, lostKey(stream), group))
                if (lost > 0) session.lost(lost)
              }
            }
          }
          readLoop().catch((cause) => {
            if (open) session.fail(redisError(cause))
          })
          return reader
        })
    }
  })

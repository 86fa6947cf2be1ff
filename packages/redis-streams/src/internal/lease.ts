/**
 * A lease in Redis: of the replicas that run the same work under the same key, one at a time holds the lease and
 * runs it; when the holder dies, its lease expires and another takes over.
 *
 * @internal
 */
import { Connector, type ConnectorError } from "@streamemit/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import { type ClusterConnection, config, connectionTarget, connector, client as newClient, nonEmpty } from "./redis.ts"

export interface LeaseOptions {
  /** A `redis://` / `rediss://` URL, as is or `Redacted`, or `{ cluster: [seed URLs] }`. */
  readonly connection: string | Redacted.Redacted<string> | ClusterConnection
  /** The lease's key: every replica of the same work uses the same one. */
  readonly key: string
  /**
   * How long a lease lasts without renewal. The holder renews it every third of it and stops its work when it
   * could not for two thirds; a holder that died is replaced about `ttl` (plus a tenth, the waiters' poll) later.
   * Default 5 seconds; at least 30 ms.
   */
  readonly ttl?: Duration.Input | undefined
}

/** Renews the lease only while it is still ours. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`

/** Gives the lease up only if it is still ours. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

export const withLease =
  (options: LeaseOptions) =>
  <A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<A, E | ConnectorError.ConnectorError, R> =>
    Effect.scoped(
      Effect.gen(function* () {
        if (typeof options !== "object" || options === null) {
          return yield* Effect.fail(config("options", options, "an options object"))
        }
        const target = yield* connectionTarget(options.connection)
        const key = yield* nonEmpty("key", options.key)
        const ttl = Duration.toMillis(yield* Connector.duration(connector, "ttl", options.ttl, "5 seconds"))
        if (ttl < 30) return yield* Effect.fail(config("ttl", options.ttl, "at least 30 milliseconds"))
        const poll = Math.max(10, Math.floor(ttl / 10))
        const renewEvery = Math.floor(ttl / 3)
        const token = `${process.pid}-${Math.random().toString(36).slice(2)}`
        // Its own connection, reconnected by ioredis: a command while it is down fails at once and is tried again.
        const client = yield* Effect.acquireRelease(
          Effect.sync(() =>
            newClient(target, `streamemit:lease:${key}`, {
              lazyConnect: true,
              enableOfflineQueue: false,
              maxRetriesPerRequest: 0,
              retryStrategy: () => poll
            })
          ),
          (client) => Effect.sync(() => client.disconnect())
        )
        client.on("error", () => {})
        client.connect().catch(() => {})
        const attempt = <T>(command: () => Promise<T>) =>
          Effect.promise(() =>
            command().then(
              (value) => ({ ok: true as const, value }),
              () => ({ ok: false as const })
            )
          )

        const acquire = Effect.gen(function* () {
          for (;;) {
            const reply = yield* attempt(() => client.set(key, token, "PX", ttl, "NX"))
            if (reply.ok && reply.value === "OK") return
            yield* Effect.sleep(poll)
          }
        })
        /** Completes when the lease is lost: taken by another, or not renewed for two thirds of `ttl`. */
        const keep = Effect.gen(function* () {
          let renewedAt = Date.now()
          for (;;) {
            yield* Effect.sleep(Math.max(1, renewedAt + renewEvery - Date.now()))
            for (;;) {
              const reply = yield* attempt(() => client.eval(RENEW, 1, key, token, ttl) as Promise<number>)
              if (reply.ok && reply.value === 1) {
                renewedAt = Date.now()
                break
              }
              if (reply.ok) return "taken by another holder"
              if (Date.now() - renewedAt >= 2 * renewEvery) return "not renewed in time"
              yield* Effect.sleep(poll)
            }
          }
        })
        const release = attempt(() => client.eval(RELEASE, 1, key, token))

        for (;;) {
          yield* acquire
          const outcome = yield* Effect.raceFirst(
            Effect.map(work, (value) => ({ _tag: "Done" as const, value })),
            Effect.map(keep, (why) => ({ _tag: "Lost" as const, why }))
          ).pipe(Effect.ensuring(release))
          if (outcome._tag === "Done") return outcome.value
          yield* Effect.logWarning(`lease ${key} lost (${outcome.why}): the work stopped; waiting to hold it again`)
        }
      })
    )

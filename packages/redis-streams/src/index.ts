/**
 * @since 0.2.0
 */

/**
 * Redis Streams consumer groups (ioredis) as a scoped, bounded, self-healing stream of acknowledgeable deliveries.
 *
 * @since 0.2.0
 */
export * as RedisStreams from "./RedisStreams.ts"

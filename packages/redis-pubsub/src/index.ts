/**
 * @since 0.1.0
 */

/**
 * Redis pub/sub (ioredis) as a scoped, bounded, self-healing stream.
 *
 * @since 0.1.0
 */
export * as RedisPubSub from "./RedisPubSub.ts"

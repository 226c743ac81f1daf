// Device tokens: 32 random bytes as base64url behind a recognisable prefix (a token found in a log
// or a repository is known for what it is, and secret scanners can match it). Only the SHA-256
// digest is stored: a token is 256 random bits, so the fast hash cannot be reversed or searched,
// and a lookup by digest is one index probe. Comparing by digest needs no constant-time compare:
// what a timing difference could reveal is the digest, which tells nothing about the token.
import { createHash, randomBytes } from 'node:crypto'

export const TOKEN_PREFIX = 'iotd_'
/** 32 bytes of base64url without padding. */
const TOKEN_PATTERN = /^iotd_[A-Za-z0-9_-]{43}$/

/** A new token (shown once, never stored). `random` is injectable for tests. */
export function newDeviceToken (random: (bytes: number) => Buffer = randomBytes): string {
  return TOKEN_PREFIX + random(32).toString('base64url')
}

/** Whether a string has a token's shape: anything else is refused without asking the database. */
export const isWellFormedToken = (token: string): boolean => TOKEN_PATTERN.test(token)

/** The stored form of a token: SHA-256 of its UTF-8 text, prefix included (32 bytes). */
export const hashToken = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest()

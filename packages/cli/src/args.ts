/** Command-line values the CLI checks itself before anything is read or sent. */
import { fromHex, InvalidInputError } from '@cloister/core';

/**
 * A service identity given on the command line: 64 hex digits (SHA-256 of the service key),
 * checked before anything is sent; `where` says where the user finds the right one.
 */
export function serviceIdentityArg(text: string, flag: string, where: string): Uint8Array {
  const hex = text.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new InvalidInputError(
      `${flag} takes the 64 hex digits of a service identity (${where}), not ${JSON.stringify(text.slice(0, 80))}`,
    );
  }
  return fromHex(hex, flag);
}

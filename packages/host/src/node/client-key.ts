/**
 * The client a remote address belongs to, as the node's per-client limits count it: the
 * per-address socket caps (HTTP's and the relay's) and the relay's fair share. An IPv4 address
 * as it is, an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack listener reports)
 * as its IPv4, and an IPv6 address by its first 64 bits, the prefix one subscriber usually holds
 * whole (RFC 6177), so a client gets neither a share nor a cap's worth of sockets per address of
 * its /64. Anything else is its own client. Kept in memory only: no address reaches logs or
 * metrics.
 */
export function shareKeyOf(address: string): string {
  const a = address.toLowerCase().split('%', 1)[0] as string; // a zone id names no client
  if (!a.includes(':')) return a;
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) return dotted[1] as string;
  const halves = a.split('::');
  if (halves.length > 2) return a;
  const head = halves[0] ? (halves[0] as string).split(':') : [];
  const tail = halves.length === 2 && halves[1] ? (halves[1] as string).split(':') : [];
  const gap = Math.max(0, 8 - head.length - tail.length);
  const groups = [...head, ...Array<string>(gap).fill('0'), ...tail];
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return a;
  const n = groups.map((g) => Number.parseInt(g, 16));
  if (n.slice(0, 5).every((x) => x === 0) && n[5] === 0xffff) {
    const [hi, lo] = [n[6] as number, n[7] as number];
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `${n
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`;
}

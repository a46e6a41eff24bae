import ipaddr from 'ipaddr.js';
import proxyaddr from 'proxy-addr';

/** Address/prefix or address/netmask, as proxy-addr writes them; null for a bare address or a name. */
function parseRange(entry: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | null {
  try {
    return ipaddr.parseCIDR(entry);
  } catch {
    const [address, mask] = entry.split('/');
    if (!address || !mask || !ipaddr.isValid(address) || !ipaddr.IPv4.isValidFourPartDecimal(mask)) return null;
    const bits = ipaddr.IPv4.parse(mask).prefixLengthFromSubnetMask();
    return bits === null ? null : [ipaddr.parse(address), bits];
  }
}

/** No proxy network is wider than this; a wider range is (part of) "trust everyone" split in pieces. */
const NARROWEST_IPV4_PREFIX = 8;
const NARROWEST_IPV6_PREFIX = 16;

/**
 * An entry that covers every IPv4 or every IPv6 address (0.0.0.0/0, ::/0, ::/1, ::ffff:0:0/96...), or a
 * range wider than any proxy network (shorter than /8 for IPv4, /16 for IPv6): two such halves,
 * 0.0.0.0/1 and 128.0.0.0/1, trust everyone just the same.
 */
export function trustsEveryAddress(entry: string): boolean {
  const range = parseRange(entry);
  if (!range) return false;
  const [ip, bits] = range;
  if (ip.kind() === 'ipv4') return bits < NARROWEST_IPV4_PREFIX;
  // Inside ::ffff:0:0/96 (IPv4 peers, matched as mapped addresses) the IPv4 rule applies, 96 bits on.
  const mapped = ipaddr.IPv6.parse('::ffff:0.0.0.0');
  if (bits >= 96 && (ip as ipaddr.IPv6).match(mapped, 96)) return bits < 96 + NARROWEST_IPV4_PREFIX;
  return bits < NARROWEST_IPV6_PREFIX;
}

/**
 * An address parsed with only IPv4-mapped IPv6 (`::ffff:0:0/96`, as a dual-stack socket reports IPv4
 * peers) made IPv4; null when it is not an address. ipaddr.js reads any IPv6 written with a dotted IPv4
 * tail as mapped, so the IPv4-compatible `::127.0.0.1` (Node's spelling of the peer `::7f00:1`) would
 * pass for 127.0.0.1: the tail is rewritten as two hex groups before parsing.
 */
export function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  let text = address;
  const tail = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(address);
  if (tail) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(tail[2]!)) return null;
    const [a, b, c, d] = ipaddr.IPv4.parse(tail[2]!).octets as [number, number, number, number];
    text = `${tail[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  if (!ipaddr.isValid(text)) return null;
  const ip = ipaddr.parse(text);
  return ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
}

/** The address as matched and logged: IPv4-mapped IPv6 (::ffff:127.0.0.1) becomes IPv4, nothing else does. */
export function normalizeAddress(address: string): string {
  return parseAddress(address)?.toString() ?? address;
}

/**
 * Compiles trusted-proxy entries (addresses, CIDR ranges, proxy-addr's names such as `loopback`) once,
 * into a check of a peer address that normalises it first and remembers recent answers (peers are few).
 * Throws a TypeError for an entry that is none of these. proxy-addr refuses a /0 range, so the whole
 * address space (allowed only with the dangerous option) is handled here.
 */
export function compileTrustedProxies(entries: readonly string[]): (address: string | undefined) => boolean {
  let everyIPv4 = false;
  let everyAddress = false;
  const ranges: string[] = [];
  for (const entry of entries) {
    const range = parseRange(entry);
    if (range && range[1] === 0) {
      if (range[0].kind() === 'ipv4') everyIPv4 = true;
      else everyAddress = true;
    } else ranges.push(entry);
  }
  const match = ranges.length > 0 ? proxyaddr.compile(ranges) : () => false;
  const answers = new Map<string, boolean>();
  return (address) => {
    if (address === undefined) return false;
    let trusted = answers.get(address);
    if (trusted === undefined) {
      const ip = normalizeAddress(address);
      trusted = parseAddress(ip) !== null && (everyAddress || (everyIPv4 && ipaddr.IPv4.isValid(ip)) || match(ip, 0));
      if (answers.size >= 1_000) answers.clear();
      answers.set(address, trusted);
    }
    return trusted;
  };
}

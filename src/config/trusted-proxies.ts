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

/** An entry that covers every IPv4 or every IPv6 address (0.0.0.0/0, ::/0, ::/1, ::ffff:0:0/96...). */
export function trustsEveryAddress(entry: string): boolean {
  const range = parseRange(entry);
  if (!range) return false;
  const [ip, bits] = range;
  if (bits === 0) return true;
  // An IPv6 range holding all of ::ffff:0:0/96 trusts every IPv4 peer (they are matched as mapped addresses).
  return ip.kind() === 'ipv6' && bits <= 96 && ipaddr.IPv6.parse('::ffff:0.0.0.0').match(range as [ipaddr.IPv6, number]);
}

/** The address as matched and logged: IPv4-mapped IPv6 (::ffff:127.0.0.1) becomes IPv4. */
export function normalizeAddress(address: string): string {
  return ipaddr.isValid(address) ? ipaddr.process(address).toString() : address;
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
      trusted = ipaddr.isValid(ip) && (everyAddress || (everyIPv4 && ipaddr.IPv4.isValid(ip)) || match(ip, 0));
      if (answers.size >= 1_000) answers.clear();
      answers.set(address, trusted);
    }
    return trusted;
  };
}

// The default advertise address: the address other servers and clients should use to reach
// this one when the config does not say (SPEC §2: "default: first private IP").
import { isIP } from "node:net";

/** The shape of one entry of `os.networkInterfaces()`, as much of it as this needs. */
export interface InterfaceAddress {
  readonly address: string;
  readonly family: string | number;
  readonly internal: boolean;
}

export type InterfaceTable = Readonly<Record<string, readonly InterfaceAddress[] | undefined>>;

/** RFC 1918 and RFC 6598 (carrier-grade NAT) ranges, as go-sockaddr's GetPrivateIP takes them. */
export function isPrivateIPv4(ip: string): boolean {
  if (isIP(ip) !== 4) return false;
  const [a = 0, b = 0] = ip.split(".").map(Number);
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
}

const isV4 = (x: InterfaceAddress) => (x.family === "IPv4" || x.family === 4) && isIP(x.address) === 4;

/**
 * The host to advertise: `bindAddr` when it names one address; otherwise the first private IPv4
 * of a non-loopback interface, else the first other non-loopback IPv4, else 127.0.0.1
 * (a machine with no network can still run a one-server cluster).
 */
export function defaultAdvertiseHost(bindAddr: string, interfaces: InterfaceTable): string {
  if (bindAddr !== "0.0.0.0" && bindAddr !== "::") return bindAddr;
  const all = Object.values(interfaces)
    .flatMap((l) => l ?? [])
    .filter((x) => !x.internal && isV4(x));
  return all.find((x) => isPrivateIPv4(x.address))?.address ?? all[0]?.address ?? "127.0.0.1";
}

/** `host:port`, bracketing IPv6 literals; a host that already has a port is kept as it is. */
export function withPort(host: string, port: number): string {
  if (isIP(host) === 6) return `[${host}]:${port}`;
  if (/:[0-9]+$/.test(host)) return host;
  return `${host}:${port}`;
}

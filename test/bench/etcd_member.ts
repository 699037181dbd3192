// One etcd 3.4 member on loopback, as every bench that runs etcd beside edgenode starts it.

export interface EtcdAddrs {
  name: string;
  client: number;
  peer: number;
  dataDir: string;
}

/** `etcd` and its flags for member `m` of `members` (a new cluster); `extra` flags go last. */
export function etcdCommand(m: EtcdAddrs, members: readonly EtcdAddrs[], extra: readonly string[] = []): string[] {
  const initial = members.map((x) => `${x.name}=http://127.0.0.1:${x.peer}`).join(",");
  return [
    "etcd",
    "--name",
    m.name,
    "--data-dir",
    m.dataDir,
    "--listen-client-urls",
    `http://127.0.0.1:${m.client}`,
    "--advertise-client-urls",
    `http://127.0.0.1:${m.client}`,
    "--listen-peer-urls",
    `http://127.0.0.1:${m.peer}`,
    "--initial-advertise-peer-urls",
    `http://127.0.0.1:${m.peer}`,
    "--initial-cluster",
    initial,
    "--initial-cluster-state",
    "new",
    ...extra,
  ];
}

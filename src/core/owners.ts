// File ownership as tar records it: numeric ids plus the user and group names, so that a restore
// on another host can map by name (as GNU tar does) and fall back to the ids.
import { readFileSync } from "node:fs";

/** name -> id and id -> name from /etc/passwd or /etc/group text (name:x:id:...). */
export function parseIdFile(text: string): { byName: Map<string, number>; byId: Map<number, string> } {
  const byName = new Map<string, number>();
  const byId = new Map<number, string>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [name, , id] = line.split(":");
    const n = Number(id);
    if (!name || id === undefined || id === "" || !Number.isInteger(n)) continue;
    if (!byName.has(name)) byName.set(name, n);
    if (!byId.has(n)) byId.set(n, name);
  }
  return { byName, byId };
}

const cache = new Map<string, ReturnType<typeof parseIdFile>>();
function table(file: "/etc/passwd" | "/etc/group"): ReturnType<typeof parseIdFile> {
  let t = cache.get(file);
  if (!t) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      // No such file (Windows, minimal containers): ids only.
    }
    cache.set(file, (t = parseIdFile(text)));
  }
  return t;
}

export interface Ownership {
  uid: number;
  gid: number;
  /** Names on the host that made the backup; "" when unknown. */
  owner: string;
  group: string;
}

export function ownershipOf(uid: number, gid: number): Ownership {
  return { uid, gid, owner: table("/etc/passwd").byId.get(uid) ?? "", group: table("/etc/group").byId.get(gid) ?? "" };
}

/** The ids to give a restored file on this host: by name when the name exists here, else the recorded ids. */
export function localIds(o: Ownership): { uid: number; gid: number } {
  return {
    uid: (o.owner ? table("/etc/passwd").byName.get(o.owner) : undefined) ?? o.uid,
    gid: (o.group ? table("/etc/group").byName.get(o.group) : undefined) ?? o.gid,
  };
}

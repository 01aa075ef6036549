// Formatting of sizes, times and digests for people.

const UNITS = ["B", "KB", "MB", "GB", "TB"];

export function bytes(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  let size = value;
  let unit = 0;
  while (size >= 1000 && unit < UNITS.length - 1) {
    size /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || size >= 100 ? 0 : 1;
  return `${size.toFixed(digits)} ${UNITS[unit]}`;
}

/** Milliseconds since the epoch from an ISO 8601 string or a number of seconds. */
export function toMillis(value) {
  if (typeof value === "number") return value * 1000;
  if (typeof value === "string") {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? null : parsed;
  }
  return null;
}

export function dateTime(value) {
  const millis = toMillis(value);
  if (millis === null) return "—";
  return new Date(millis).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function relative(value, now = Date.now()) {
  const millis = toMillis(value);
  if (millis === null) return "never";
  const seconds = Math.round((millis - now) / 1000);
  const steps = [
    [60, "second"],
    [60, "minute"],
    [24, "hour"],
    [30, "day"],
    [12, "month"],
    [Infinity, "year"],
  ];
  let amount = seconds;
  for (const [size, unit] of steps) {
    if (Math.abs(amount) < size) {
      return new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }).format(amount, unit);
    }
    amount = Math.round(amount / size);
  }
  return dateTime(value);
}

/** `sha256:0123456789ab`: the algorithm and the first 12 hex digits. */
export function shortDigest(digest) {
  const [algorithm, hex] = String(digest).split(":", 2);
  return hex ? `${algorithm}:${hex.slice(0, 12)}` : String(digest);
}

export function platform(entry) {
  return [entry.os, entry.architecture, entry.variant].filter(Boolean).join("/");
}

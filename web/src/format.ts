// Human formatting of values for the charts, tables and live figures.

export type Unit = 'percent' | 'bytes_per_second' | 'bytes' | '';

const SI = ['', 'k', 'M', 'G', 'T', 'P'];
const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatValue(v: number | null | undefined, unit: Unit = ''): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (unit === 'percent') return `${v.toFixed(1)} %`;
  if (unit === 'bytes' || unit === 'bytes_per_second') {
    let i = 0;
    let x = Math.abs(v);
    while (x >= 1024 && i < IEC.length - 1) {
      x /= 1024;
      i++;
    }
    const s = `${(Math.sign(v) * x).toFixed(x >= 100 || i === 0 ? 0 : 1)} ${IEC[i]}`;
    return unit === 'bytes_per_second' ? `${s}/s` : s;
  }
  return formatNumber(v);
}

export function formatNumber(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) {
    let i = 0;
    let x = a;
    while (x >= 1000 && i < SI.length - 1) {
      x /= 1000;
      i++;
    }
    if (i > 0) return `${(Math.sign(v) * x).toPrecision(4)}${SI[i]}`;
    return v.toExponential(3);
  }
  return String(Number(v.toPrecision(6)));
}

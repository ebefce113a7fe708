import { useMemo, useRef } from 'preact/hooks';
import { columnX, edgePath, healthOfNode, LAYER_TITLE, LAYERS, layoutGraph, NODE_H, NODE_W, type MapEdge, type MapNode, type Placed } from '../healthmap';
import { HEALTH_ICON } from '../resources';

const NAME_CHARS = 24;

function short(text: string): string {
  return text.length > NAME_CHARS ? `${text.slice(0, NAME_CHARS - 1)}…` : text;
}

interface Props {
  nodes: MapNode[];
  edges: MapEdge[];
  selected: string | null;
  onSelect: (id: string) => void;
}

/** The health map as a layered SVG graph: hosts, containers, services as nodes (colour, icon and status
 * word), "runs on" edges between them. One node is in the tab order (the selected one, or the first);
 * arrows move: up/down within a column, left to what the node runs on, right to what runs on it;
 * focusing a node selects it. */
export function HealthGraph({ nodes, edges, selected, onSelect }: Props) {
  const layout = useMemo(() => layoutGraph(nodes, edges), [nodes, edges]);
  const svg = useRef<SVGSVGElement>(null);
  const links = useMemo(() => {
    const up = new Map<string, string[]>();
    const down = new Map<string, string[]>();
    for (const e of edges) {
      up.set(e.source, [...(up.get(e.source) ?? []), e.target]);
      down.set(e.target, [...(down.get(e.target) ?? []), e.source]);
    }
    return { up, down };
  }, [edges]);
  const active = selected && layout.placed.has(selected) ? selected : (layout.columns.find((c) => c.length)?.[0] ?? null);

  const focusNode = (id: string | undefined) => {
    if (!id) return;
    const el = svg.current?.querySelector<SVGGElement>(`[data-resource="${CSS.escape(id)}"]`);
    el?.focus();
  };

  const nearestIn = (col: number, row: number, dir: 1 | -1): string | undefined => {
    for (let c = col + dir; c >= 0 && c < LAYERS.length; c += dir) {
      const ids = layout.columns[c] ?? [];
      if (!ids.length) continue;
      return ids.reduce((best, id) => (Math.abs((layout.placed.get(id)?.row ?? 0) - row) < Math.abs((layout.placed.get(best)?.row ?? 0) - row) ? id : best));
    }
    return undefined;
  };

  const onKey = (p: Placed, e: KeyboardEvent) => {
    const col = layout.columns[p.col] ?? [];
    const i = col.indexOf(p.node.id);
    const byRow = (ids: string[] | undefined) => [...(ids ?? [])].sort((a, b) => (layout.placed.get(a)?.row ?? 0) - (layout.placed.get(b)?.row ?? 0))[0];
    let next: string | undefined;
    if (e.key === 'ArrowDown') next = col[i + 1];
    else if (e.key === 'ArrowUp') next = col[i - 1];
    else if (e.key === 'Home') next = col[0];
    else if (e.key === 'End') next = col[col.length - 1];
    else if (e.key === 'ArrowLeft') next = byRow(links.up.get(p.node.id)) ?? nearestIn(p.col, p.row, -1);
    else if (e.key === 'ArrowRight') next = byRow(links.down.get(p.node.id)) ?? nearestIn(p.col, p.row, 1);
    else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onSelect(p.node.id);
      return;
    } else return;
    e.preventDefault();
    focusNode(next);
  };

  const label = (p: Placed) => {
    const st = healthOfNode(p.node);
    const on = (links.up.get(p.node.id) ?? []).map((id) => layout.placed.get(id)?.node.name ?? id);
    const here = links.down.get(p.node.id)?.length ?? 0;
    // starts with the visible text (name, icon, status, kind): what a speech-input user says
    return [
      `${p.node.name} ${HEALTH_ICON[st]} ${st} · ${p.node.kind}`,
      p.node.health?.reason ?? 'not evaluated yet',
      on.length ? `runs on ${on.join(', ')}` : '',
      here ? `${here} running on it` : '',
    ]
      .filter(Boolean)
      .join('. ');
  };

  const hot = selected ? new Set([selected, ...(links.up.get(selected) ?? []), ...(links.down.get(selected) ?? [])]) : null;
  return (
    <div class="graph-scroll">
      <svg
        ref={svg}
        class="health-graph"
        width={layout.width}
        height={layout.height}
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        role="group"
        aria-label="Resource graph: hosts, containers and services; arrow keys move between nodes"
        data-testid="health-graph"
      >
        {LAYERS.map((k, col) => (
          <text key={k} class="graph-col-title" x={columnX(col)} y={20} aria-hidden="true">
            {LAYER_TITLE[k]} ({layout.columns[col]?.length ?? 0})
          </text>
        ))}
        <g class="graph-edges" aria-hidden="true">
          {edges.map((e) => {
            const s = layout.placed.get(e.source);
            const t = layout.placed.get(e.target);
            if (!s || !t) return null;
            const on = hot?.has(e.source) && hot.has(e.target) && (e.source === selected || e.target === selected);
            return <path key={`${e.source}>${e.target}`} class={`graph-edge edge-${healthOfNode(s.node)}${on ? ' edge-hot' : ''}`} d={edgePath(s, t)} data-source={e.source} data-target={e.target} />;
          })}
        </g>
        {[...layout.placed.values()].map((p) => {
          const st = healthOfNode(p.node);
          const isSel = selected === p.node.id;
          return (
            <g
              key={p.node.id}
              class={`gnode node-${st}${isSel ? ' selected' : ''}`}
              transform={`translate(${p.x},${p.y})`}
              role="button"
              tabindex={p.node.id === active ? 0 : -1}
              aria-pressed={isSel}
              aria-label={label(p)}
              data-resource={p.node.id}
              data-health={st}
              onClick={() => onSelect(p.node.id)}
              onFocus={() => onSelect(p.node.id)}
              onKeyDown={(e) => onKey(p, e)}
            >
              <title>{`${p.node.kind} ${p.node.name}: ${p.node.health?.reason ?? 'not evaluated yet'}`}</title>
              <rect class="gnode-box" width={NODE_W} height={NODE_H} rx={7} />
              <rect class="gnode-stripe" width={7} height={NODE_H} rx={3} />
              <text class="gnode-name" x={16} y={19}>
                {short(p.node.name)}
              </text>
              <text class="gnode-status" x={16} y={37}>
                <tspan class="gnode-icon">{HEALTH_ICON[st]}</tspan> {st}
                <tspan class="gnode-kind"> · {p.node.kind}</tspan>
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}

// `mnistc graph`: the net as written in its spec, as a picture. Blocks are boxes around their
// layers, every layer shows its output shape and parameters, and a block's `add:` / `mul:` /
// `concat:` reads its other operand over an edge drawn as a skip, a gate or a concat; the title
// carries the budget line. elkjs lays the graph out (layered, with compound nodes, so a block is a
// box its layers stay in and edges leave it where they must); the SVG is ours.
//
// Text is DejaVu Sans Mono: a monospaced font's width is its character count times one advance, so
// boxes fit their text without measuring it, and the same on every machine.
import elkBundle from "elkjs/lib/elk.bundled.js";
import type { ElkExtendedEdge, ElkNode } from "elkjs/lib/elk-api.js";
import { thousands } from "../../compiler/budget.js";
import { type AnyNodeIR, GRAPH_INPUT, type ModelIR } from "../../compiler/ir.js";
import { opDef } from "../../compiler/ops.js";
import { paramCount } from "../../compiler/params.js";
import { escapeXml } from "../../util/text.js";

// A CommonJS module whose export is the class and also its own `default`; TypeScript sees the latter.
const ELK = elkBundle.default;

export const MONO_FAMILY = "DejaVu Sans Mono";
/** DejaVu Sans Mono's advance: 1233 of 2048 units per em. */
const ADVANCE = 1233 / 2048;
const FONT = 12;
const TITLE_FONT = 14;
const LINE = 16;
const PAD_X = 8;
const PAD_Y = 6;
const BLOCK_LABEL = 22;
/** A block's padding around its boxes, and its label's indent. */
const BLOCK_SIDE = 10;
const MARGIN = 16;

/** How an edge reads: the chain, or a block's other operand (`add:`, `mul:`, `concat:`). */
export type EdgeKind = "flow" | "skip" | "gate" | "concat";
const MERGE_EDGE: Record<string, EdgeKind> = { add: "skip", mul: "gate", concat: "concat" };
/** What an edge of each kind says beside it (the chain's say nothing). */
const EDGE_LABEL: Record<EdgeKind, string> = {
  flow: "",
  skip: "+ skip",
  gate: "× gate",
  concat: "concat",
};
const BLOCK_FILL = "#eef3fa";
const EDGE_COLOR: Record<EdgeKind, string> = {
  flow: "#555555",
  skip: "#1f77b4",
  gate: "#d62728",
  concat: "#2ca02c",
};

export interface Point {
  x: number;
  y: number;
}

export interface GraphBox {
  /** The layer's PyTorch name, or `input`. */
  id: string;
  kind: "input" | "layer" | "merge";
  block: string | null;
  /** Name and type; output shape and parameters. */
  lines: [string, string];
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphBlock {
  name: string;
  label: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphEdge {
  from: string;
  to: string;
  kind: EdgeKind;
  /** Absolute, from the producer's box to the consumer's. */
  points: Point[];
  label: { text: string; x: number; y: number } | null;
}

/** The laid-out net: what `graphSvg` draws and `mnistc graph --json` prints. */
export interface GraphLayout {
  name: string;
  title: string[];
  width: number;
  height: number;
  blocks: GraphBlock[];
  nodes: GraphBox[];
  edges: GraphEdge[];
}

/** Between a layer's name (drawn bold) and its type. */
const NAME_GAP = "  ";
const textWidth = (text: string, size = FONT) => Math.ceil(text.length * ADVANCE * size);
const shapeText = (shape: number[]) => `[${shape.join(", ")}]`;
const paramsText = (n: number) => (n === 0 ? "" : ` · ${thousands(n)} params`);
const r1 = (v: number) => Math.round(v * 10) / 10;

function nodeLines(node: AnyNodeIR): [string, string] {
  return [
    `${node.name}${NAME_GAP}${opDef(node.kind).describe(node.attrs, node.inShapes)}`,
    `${shapeText(node.outShape)}${paramsText(paramCount(node, true))}`,
  ];
}

/**
 * The edges a node reads over: its first operand and the chain's are `flow`; a merge's operand from
 * the block it names (`from`) is a skip, gate or concat.
 */
function inEdges(node: AnyNodeIR, blockOf: Map<string, string | undefined>) {
  const merge = MERGE_EDGE[node.kind];
  const from = merge ? (node.attrs as { from: string }).from : undefined;
  return node.inputs.map((input) => ({
    from: input,
    to: node.name,
    kind:
      merge && from !== undefined && blockOf.get(input) === from && from !== node.block
        ? merge
        : ("flow" as EdgeKind),
  }));
}

/** The title: the net's name and size, and the budget line as `params` prints it. */
export function graphTitle(ir: ModelIR, budgetLine: string): string[] {
  const { channels, height, width } = ir.input;
  return [
    `${ir.name} — input [${channels}, ${height}, ${width}], ${ir.classes} classes, ${thousands(ir.totals.macs)} MACs per image`,
    budgetLine,
  ];
}

/** Lays the net out (deterministic: elkjs's layered algorithm with its fixed seed). */
export async function layoutGraph(ir: ModelIR, budgetLine: string): Promise<GraphLayout> {
  const blockOf = new Map<string, string | undefined>([[GRAPH_INPUT, undefined]]);
  for (const node of ir.nodes) blockOf.set(node.name, node.block);
  const { channels, height, width } = ir.input;
  const boxes: Omit<GraphBox, "x" | "y" | "width" | "height">[] = [
    {
      id: GRAPH_INPUT,
      kind: "input",
      block: null,
      lines: [GRAPH_INPUT, shapeText([channels, height, width])],
    },
    ...ir.nodes.map((node) => ({
      id: node.name,
      kind: (MERGE_EDGE[node.kind] ? "merge" : "layer") as GraphBox["kind"],
      block: node.block ?? null,
      lines: nodeLines(node),
    })),
  ];
  const edges = ir.nodes.flatMap((node) => inEdges(node, blockOf));
  const blockNames = [...new Set(ir.nodes.flatMap((n) => (n.block ? [n.block] : [])))];
  const blockLabel = (name: string) => {
    const count = ir.nodes
      .filter((n) => n.block === name)
      .reduce((s, n) => s + paramCount(n, true), 0);
    return `${name}${paramsText(count)}`;
  };
  // One width for every box, wide enough for the block labels too (a block is as wide as its
  // boxes): the chain reads as one straight column.
  const boxWidth =
    Math.max(
      ...boxes.flatMap((b) => b.lines.map((l) => textWidth(l))),
      ...blockNames.map((name) => textWidth(blockLabel(name)) + 2 * (BLOCK_SIDE - PAD_X)),
    ) +
    2 * PAD_X;
  const boxHeight = 2 * LINE + 2 * PAD_Y;
  const elkBox = (b: (typeof boxes)[number]): ElkNode => ({
    id: b.id,
    width: boxWidth,
    height: boxHeight,
  });
  // Compound nodes in the spec's order, each placed where its first layer is.
  const children: ElkNode[] = [];
  const blockNodes = new Map<string, ElkNode>();
  for (const b of boxes) {
    if (b.block === null) {
      children.push(elkBox(b));
      continue;
    }
    let block = blockNodes.get(b.block);
    if (!block) {
      block = {
        id: `block:${b.block}`,
        children: [],
        layoutOptions: {
          "elk.padding": `[top=${BLOCK_LABEL + 6},left=${BLOCK_SIDE},bottom=${BLOCK_SIDE},right=${BLOCK_SIDE}]`,
        },
      };
      blockNodes.set(b.block, block);
      children.push(block);
    }
    block.children?.push(elkBox(b));
  }
  const elkEdges: ElkExtendedEdge[] = edges.map((e, i) => ({
    id: `e${i}`,
    sources: [e.from],
    targets: [e.to],
    labels:
      e.kind === "flow"
        ? []
        : [
            {
              text: EDGE_LABEL[e.kind],
              width: textWidth(EDGE_LABEL[e.kind], FONT - 1),
              height: FONT + 2,
            },
          ],
  }));
  const root: ElkNode = {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.hierarchyHandling": "INCLUDE_CHILDREN",
      "elk.edgeRouting": "ORTHOGONAL",
      "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
      "elk.layered.nodePlacement.strategy": "NETWORK_SIMPLEX",
      "elk.layered.nodePlacement.bk.fixedAlignment": "BALANCED",
      "elk.layered.spacing.nodeNodeBetweenLayers": "18",
      "elk.layered.spacing.edgeNodeBetweenLayers": "10",
      "elk.spacing.nodeNode": "24",
      "elk.spacing.edgeNode": "14",
      "elk.spacing.edgeLabel": "2",
      "elk.edgeLabels.placement": "CENTER",
      "elk.padding": `[top=${MARGIN},left=${MARGIN},bottom=${MARGIN},right=${MARGIN}]`,
    },
    children,
    edges: elkEdges,
  };
  const laid = await new ELK().layout(root);

  // elkjs gives each shape relative to its parent and each edge relative to its container.
  const origin = new Map<string, Point>([["root", { x: 0, y: 0 }]]);
  const shapes = new Map<string, GraphBlock & { id: string }>();
  const visit = (node: ElkNode, at: Point) => {
    for (const child of node.children ?? []) {
      const p = { x: at.x + (child.x ?? 0), y: at.y + (child.y ?? 0) };
      origin.set(child.id, p);
      shapes.set(child.id, {
        id: child.id,
        name: child.id,
        label: "",
        x: r1(p.x),
        y: r1(p.y),
        width: r1(child.width ?? 0),
        height: r1(child.height ?? 0),
      });
      visit(child, p);
    }
  };
  visit(laid, { x: 0, y: 0 });

  const title = graphTitle(ir, budgetLine);
  const titleHeight = MARGIN + title.length * (TITLE_FONT + 6);
  const down = (p: Point): Point => ({ x: r1(p.x), y: r1(p.y + titleHeight) });
  const place = (id: string) => {
    const s = shapes.get(id);
    if (!s) throw new Error(`graph layout: no position for ${id}`);
    return { x: s.x, y: r1(s.y + titleHeight), width: s.width, height: s.height };
  };
  const layoutEdges = (laid.edges ?? []).map((e, i): GraphEdge => {
    const edge = edges[i] as (typeof edges)[number];
    const at = origin.get((e as { container?: string }).container ?? "root") ?? { x: 0, y: 0 };
    const abs = (p: Point) => down({ x: p.x + at.x, y: p.y + at.y });
    const points = straighten(
      (e.sections ?? []).flatMap((s) => [
        abs(s.startPoint),
        ...(s.bendPoints ?? []).map(abs),
        abs(s.endPoint),
      ]),
    );
    const label = e.labels?.[0];
    return {
      ...edge,
      points,
      label:
        label && label.text !== undefined
          ? {
              text: label.text,
              ...down({ x: (label.x ?? 0) + at.x, y: (label.y ?? 0) + at.y + FONT - 1 }),
            }
          : null,
    };
  });
  const titleWidth = Math.max(...title.map((t) => textWidth(t, TITLE_FONT))) + 2 * MARGIN;
  return {
    name: ir.name,
    title,
    width: Math.ceil(Math.max(laid.width ?? 0, titleWidth)),
    height: Math.ceil((laid.height ?? 0) + titleHeight),
    blocks: blockNames.map((name) => ({
      name,
      label: blockLabel(name),
      ...place(`block:${name}`),
    })),
    nodes: boxes.map((b) => ({ ...b, ...place(b.id) })),
    edges: layoutEdges,
  };
}

/**
 * An orthogonal route without elkjs's half-pixel steps where an edge crosses a block's border:
 * coordinates within a pixel of the next point's are taken from it, and points in line dropped.
 */
function straighten(points: Point[]): Point[] {
  const out = points.map((p) => ({ ...p }));
  for (let i = out.length - 2; i >= 0; i--) {
    const [p, next] = [out[i] as Point, out[i + 1] as Point];
    if (Math.abs(p.x - next.x) < 1) p.x = next.x;
    if (Math.abs(p.y - next.y) < 1) p.y = next.y;
  }
  return out.filter((p, i) => {
    const [prev, next] = [out[i - 1], out[i + 1]];
    if (!prev || !next) return true;
    return !((prev.x === p.x && p.x === next.x) || (prev.y === p.y && p.y === next.y));
  });
}

const path = (points: Point[]) =>
  points.map((p, i) => `${i === 0 ? "M" : "L"}${p.x} ${p.y}`).join(" ");

/** The SVG of a laid-out net: a pure function of the layout. */
export function graphSvg(layout: GraphLayout): string {
  const { width, height } = layout;
  const kinds = Object.keys(EDGE_COLOR) as EdgeKind[];
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xml:space="preserve" font-family="${MONO_FAMILY}, monospace" font-size="${FONT}">`,
    "<defs>",
    ...kinds.map(
      (k) =>
        `<marker id="arrow-${k}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="${EDGE_COLOR[k]}"/></marker>`,
    ),
    "</defs>",
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...layout.title.map(
      (line, i) =>
        `<text x="${MARGIN}" y="${MARGIN + (i + 1) * (TITLE_FONT + 6) - 6}" font-size="${TITLE_FONT}"${i === 0 ? ' font-weight="bold"' : ""}>${escapeXml(line)}</text>`,
    ),
  ];
  for (const b of layout.blocks) {
    out.push(
      `<rect class="block" x="${b.x}" y="${b.y}" width="${b.width}" height="${b.height}" rx="6" fill="${BLOCK_FILL}" stroke="#9fb3cc"/>`,
    );
  }
  for (const e of layout.edges) {
    const dash = e.kind === "flow" ? "" : ' stroke-dasharray="5 3"';
    out.push(
      `<path class="edge ${e.kind}" d="${path(e.points)}" fill="none" stroke="${EDGE_COLOR[e.kind]}" stroke-width="${e.kind === "flow" ? 1.2 : 1.6}"${dash} marker-end="url(#arrow-${e.kind})"/>`,
    );
    if (e.label)
      out.push(
        `<text x="${e.label.x}" y="${e.label.y}" font-size="${FONT - 1}" fill="${EDGE_COLOR[e.kind]}">${escapeXml(e.label.text)}</text>`,
      );
  }
  // Block labels over the edges that enter their blocks, on a halo of the block's colour.
  for (const b of layout.blocks) {
    out.push(
      `<text class="block-label" x="${r1(b.x + BLOCK_SIDE)}" y="${r1(b.y + BLOCK_LABEL - 6)}" font-weight="bold" fill="#34495e" stroke="${BLOCK_FILL}" stroke-width="4" paint-order="stroke">${escapeXml(b.label)}</text>`,
    );
  }
  const fill = { input: "#e8e8e8", layer: "white", merge: "#fff4d6" };
  for (const n of layout.nodes) {
    const [head, detail] = n.lines;
    const gap = head.indexOf(NAME_GAP);
    const name = gap < 0 ? head : head.slice(0, gap);
    const rest = gap < 0 ? "" : head.slice(gap);
    out.push(
      `<g class="node ${n.kind}">`,
      `<rect x="${n.x}" y="${n.y}" width="${n.width}" height="${n.height}" rx="3" fill="${fill[n.kind]}" stroke="#333333"/>`,
      `<text x="${r1(n.x + PAD_X)}" y="${r1(n.y + PAD_Y + LINE - 4)}"><tspan font-weight="bold">${escapeXml(name)}</tspan>${escapeXml(rest)}</text>`,
      `<text x="${r1(n.x + PAD_X)}" y="${r1(n.y + PAD_Y + 2 * LINE - 4)}" fill="#555555">${escapeXml(detail)}</text>`,
      "</g>",
    );
  }
  out.push("</svg>", "");
  return out.join("\n");
}

/** The SVG of a net, from its IR and the budget line `params` prints for it. */
export async function renderGraphSvg(ir: ModelIR, budgetLine: string): Promise<string> {
  return graphSvg(await layoutGraph(ir, budgetLine));
}

/**
 * The events-per-second time series, drawn with uPlot (a canvas chart that
 * redraws thousands of points per frame). It only draws what it is given;
 * the numbers come from ActivityAggregates.rateSeries().
 */
import uPlot from 'uplot';

const AXIS_STROKE = '#8b9bb4';
const GRID_STROKE = 'rgba(139, 155, 180, 0.12)';
const CHART_HEIGHT_PX = 260;

export class RateChart {
  private readonly plot: uPlot;
  private readonly resizeObserver: ResizeObserver;

  constructor(private readonly container: HTMLElement) {
    const options: uPlot.Options = {
      width: Math.max(320, container.clientWidth),
      height: CHART_HEIGHT_PX,
      cursor: { drag: { x: false, y: false } },
      legend: { show: true },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, Math.ceil(max * 1.15))] } },
      axes: [
        { stroke: AXIS_STROKE, grid: { stroke: GRID_STROKE }, ticks: { stroke: GRID_STROKE } },
        { stroke: AXIS_STROKE, grid: { stroke: GRID_STROKE }, ticks: { stroke: GRID_STROKE }, size: 50 },
      ],
      series: [
        {},
        {
          label: 'events/s',
          stroke: '#38bdf8',
          width: 2,
          fill: 'rgba(56, 189, 248, 0.16)',
          points: { show: false },
          value: (_u, v) => (v == null ? '–' : String(v)),
        },
      ],
    };
    this.plot = new uPlot(options, [[], []], container);
    this.resizeObserver = new ResizeObserver(() => this.plot.setSize({ width: Math.max(320, container.clientWidth), height: CHART_HEIGHT_PX }));
    this.resizeObserver.observe(container);
  }

  /** Replace the series: `xs` in epoch seconds, `ys` events in that second. */
  update(xs: number[], ys: number[]): void {
    this.plot.setData([xs, ys]);
    // Exposed for tests and curious users: how many seconds with events are drawn.
    this.container.dataset.points = String(ys.filter((y) => y > 0).length);
  }

  /** The data uPlot currently draws ([xs, ys]). */
  get data(): uPlot.AlignedData {
    return this.plot.data;
  }

  destroy(): void {
    this.resizeObserver.disconnect();
    this.plot.destroy();
  }
}

/**
 * The throughput chart (uPlot): instances per minute on the left axis, MB/s on the right,
 * sized to its container.
 */

import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { ThroughputSeries } from '../live/throughput.js';

const HEIGHT = 200;
const INSTANCES_COLOUR = '#2563eb';
const MEGABYTES_COLOUR = '#15803d';

const atLeast = (minimum: number) => (_u: uPlot, _min: number, max: number) =>
  [0, Math.max(max * 1.1, minimum)] as uPlot.Range.MinMax;

function optionsFor(width: number): uPlot.Options {
  return {
    width,
    height: HEIGHT,
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: {
      x: { time: true },
      n: { range: atLeast(1) },
      mb: { range: atLeast(0.1) },
    },
    series: [
      { label: 'Time', value: '{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}' },
      {
        label: 'Instances/min',
        scale: 'n',
        stroke: INSTANCES_COLOUR,
        fill: 'rgba(37, 99, 235, 0.10)',
        width: 2,
        value: (_u, v) => (v === null ? '—' : v.toFixed(0)),
      },
      {
        label: 'MB/s',
        scale: 'mb',
        stroke: MEGABYTES_COLOUR,
        width: 2,
        dash: [6, 3],
        value: (_u, v) => (v === null ? '—' : v.toFixed(2)),
      },
    ],
    axes: [
      {
        stroke: '#555',
        grid: { stroke: '#eceff3' },
        ticks: { stroke: '#d5dae1' },
        // 24-hour clock, as hospital systems show time.
        values: '{HH}:{mm}',
      },
      {
        scale: 'n',
        label: 'instances/min',
        stroke: INSTANCES_COLOUR,
        grid: { stroke: '#eceff3' },
        ticks: { stroke: '#d5dae1' },
        size: 50,
      },
      {
        scale: 'mb',
        side: 1,
        label: 'MB/s',
        stroke: MEGABYTES_COLOUR,
        grid: { show: false },
        ticks: { stroke: '#d5dae1' },
        size: 50,
      },
    ],
  };
}

export function ThroughputChart({ data }: { readonly data: ThroughputSeries }) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const latestData = useRef(data);
  latestData.current = data;

  useEffect(() => {
    const element = container.current;
    if (element === null) return;
    const chart = new uPlot(optionsFor(element.clientWidth), latestData.current, element);
    plot.current = chart;
    const observer = new ResizeObserver(() => {
      chart.setSize({ width: element.clientWidth, height: HEIGHT });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = undefined;
    };
  }, []);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <div
      className="chart"
      ref={container}
      role="img"
      aria-label="Received instances per minute and megabytes per second, last 15 minutes"
    />
  );
}

// Draws each <canvas data-chart-labels data-chart-values data-chart-label> with Chart.js (loaded
// before this file): a bar chart, or the chart data-chart-type names ("line" for a series over
// time). A chart of several series carries data-chart-series instead of data-chart-values and
// data-chart-label: a list of {"label", "values"}, one line (or set of bars) each; a null value
// is a gap. The figures come from the page's markup, never from an inline script, which the
// Content-Security-Policy forbids; each page shows the same figures in a table too.
function chartDatasets(canvas) {
  if (canvas.dataset.chartSeries) {
    return JSON.parse(canvas.dataset.chartSeries).map((series) => ({ label: series.label, data: series.values }));
  }
  return [{ label: canvas.dataset.chartLabel, data: JSON.parse(canvas.dataset.chartValues) }];
}

document.addEventListener("DOMContentLoaded", () => {
  for (const canvas of document.querySelectorAll("canvas[data-chart-values], canvas[data-chart-series]")) {
    new Chart(canvas, {
      type: canvas.dataset.chartType || "bar",
      data: { labels: JSON.parse(canvas.dataset.chartLabels), datasets: chartDatasets(canvas) },
      options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
});

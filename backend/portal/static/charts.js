// Draws each <canvas data-chart-labels data-chart-values data-chart-label> with Chart.js (loaded
// before this file): a bar chart, or the chart data-chart-type names ("line" for a series over
// time). The figures come from the page's markup, never from an inline script, which the
// Content-Security-Policy forbids; each page shows the same figures in a table too.
document.addEventListener("DOMContentLoaded", () => {
  for (const canvas of document.querySelectorAll("canvas[data-chart-values]")) {
    new Chart(canvas, {
      type: canvas.dataset.chartType || "bar",
      data: {
        labels: JSON.parse(canvas.dataset.chartLabels),
        datasets: [{ label: canvas.dataset.chartLabel, data: JSON.parse(canvas.dataset.chartValues) }],
      },
      options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }
});

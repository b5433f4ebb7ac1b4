// Plotly.js, loaded once per page from the copy the server serves (ui.step_view.plotly_url): the
// step view saves a chart as an image with it, and the generation element (ui/generation.py) draws
// with it.

let plotlyLoading = null;

function loadPlotly(url) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.async = true;
      script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("no Plotly")));
      script.onerror = () => {
        plotlyLoading = null;
        reject(new Error(`could not load ${url}`));
      };
      document.head.appendChild(script);
    });
  }
  return plotlyLoading;
}


(function () {
  function charts() { return document.querySelectorAll(".js-plotly-plot"); }
  window.addEventListener("beforeprint", function () {
    charts().forEach(function (el) { Plotly.relayout(el, {width: 700}); });
  });
  window.addEventListener("afterprint", function () {
    charts().forEach(function (el) { Plotly.relayout(el, {width: null, autosize: true}); });
  });
})();

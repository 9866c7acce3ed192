// While the triggered imagectl_ops run goes, ask Airflow (as the signed-in user) for its state; when it ends,
// show the page again (imagectl/plugin/page.py inlines this).
(function () {
  var data = JSON.parse(document.getElementById('imagectl-poll').textContent);
  function poll() {
    fetch(data.api, {credentials: 'same-origin'}).then(function (r) { return r.ok ? r.json() : null; }).then(function (run) {
      if (run && (run.state === 'success' || run.state === 'failed')) { location.replace(data.page + '&state=' + run.state); }
      else { setTimeout(poll, 2000); }
    }).catch(function () { setTimeout(poll, 4000); });
  }
  setTimeout(poll, 1500);
})();

# Sourced by .ci/run (set -euo pipefail, repo root). Installs Debian's
# chromium (156 on Debian 12) for the tests that drive a real headless
# browser (chromedp). The tests start and stop their own browser process
# with a throwaway profile; as root chromium needs --no-sandbox, which the
# tests pass. Exports MANAGEDVM_CHROMIUM, the browser the tests run.
apt_install chromium
MANAGEDVM_CHROMIUM=$(command -v chromium)
export MANAGEDVM_CHROMIUM
# A control: the browser renders a page headless on this machine.
if ! timeout 120 "$MANAGEDVM_CHROMIUM" --headless --no-sandbox --disable-gpu \
	--dump-dom 'data:text/html,<p>ok</p>' 2>/dev/null | grep -q '<p>ok</p>'; then
	echo "70-chromium: $MANAGEDVM_CHROMIUM does not render headless" >&2
	exit 1
fi
"$MANAGEDVM_CHROMIUM" --version 2>/dev/null || true

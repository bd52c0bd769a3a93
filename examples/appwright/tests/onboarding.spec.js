// Example AppWright test run by .github/workflows/appwright.yml through qgjob. The compose
// stack's agents use the simulator driver (no real device), which passes any test whose
// path does not match SIM_FAIL_PATTERN (*fail*) or SIM_ERROR_PATTERN.
import { test, expect } from "appwright";

test("onboarding screen opens", async ({ device }) => {
  await expect(device.getByText("onboarding")).toBeVisible();
});

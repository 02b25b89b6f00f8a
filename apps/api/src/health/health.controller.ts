import { Controller, Get, HttpCode } from '@nestjs/common';

/** TGI's liveness probe. It answers 200 once the default model has been validated at boot. */
@Controller()
export class HealthController {
  @Get('health')
  @HttpCode(200)
  health(): void {}
}

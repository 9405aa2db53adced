/** Routes marked @Public() skip the client API key guard (health, metrics, admin routes). */
import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'llm-server:is-public';
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);

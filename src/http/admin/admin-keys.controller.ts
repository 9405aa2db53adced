import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, UseGuards } from '@nestjs/common';
import { AdminSurface } from '../guards/listener.guard';
import { Public } from '../guards/public.decorator';
import { AdminKeysService } from '../../modules/admin/admin-keys.service';
import { AdminTokenGuard } from '../guards/admin-token.guard';
import { CreateKeyDto, UpdateKeyDto } from '../../modules/admin/dto/key-fields.dto';

@Public()
@AdminSurface()
@UseGuards(AdminTokenGuard)
@Controller('admin/keys')
export class AdminKeysController {
  constructor(private readonly keys: AdminKeysService) {}

  @Post()
  create(@Body() dto: CreateKeyDto) {
    return this.keys.create(dto);
  }

  @Get()
  list(
    @Query('limit') limit: unknown,
    @Query('cursor') cursor: unknown,
    @Query('q') q: unknown,
    @Query('team_id') teamId: unknown,
  ) {
    return this.keys.list(limit, cursor, q, teamId);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.keys.get(id);
  }

  @Patch(':id')
  update(@Param('id') id: string, @Body() dto: UpdateKeyDto) {
    return this.keys.update(id, dto);
  }

  @Post(':id/rotate')
  @HttpCode(200)
  rotate(@Param('id') id: string) {
    return this.keys.rotate(id);
  }

  @Delete(':id')
  @HttpCode(204)
  revoke(@Param('id') id: string) {
    return this.keys.revoke(id);
  }

  @Get(':id/usage')
  usage(@Param('id') id: string, @Query('from') from: unknown, @Query('to') to: unknown) {
    return this.keys.dailyUsage(id, from, to);
  }
}
